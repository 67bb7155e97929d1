"""Output for `aac report`: progress to `out`, warnings and errors to `err`, secrets masked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

MASK = "***"


@dataclass(slots=True)
class Console:
    """Writes lines; any registered secret is replaced by *** whatever the text's origin."""

    out: TextIO
    err: TextIO
    secrets: list[str] = field(default_factory=list)

    def hide(self, secret: str) -> None:
        """Mask `secret` in everything written from now on."""
        if secret:
            self.secrets.append(secret)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def info(self, text: str) -> None:
        """A progress or summary line on stdout."""
        self.out.write(self._clean(text) + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        """A `aac: warning:` line on stderr."""
        self.err.write(self._clean(f"aac: warning: {text}") + "\n")
        self.err.flush()

    def error(self, text: str) -> None:
        """An `aac: error:` line on stderr."""
        self.err.write(self._clean(f"aac: error: {text}") + "\n")
        self.err.flush()
