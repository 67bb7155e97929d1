"""The CI context a test cycle carries at its root: where it came from and where to report.

It lives with the provider protocol, which speaks it; the bot core imports it from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Sources whose cycles are published back to an SCM; any other value (a runner's name)
# means the results are stored and analysed but posted nowhere.
SCM_SOURCES = frozenset({"github", "gitlab", "azure"})


@dataclass(slots=True)
class CiContext:
    """Where a cycle came from (runner, pipeline) and where it reports (SCM, repo, PR, sha)."""

    source: str
    repository: str
    sha: str
    # The SCM's API host ("api.github.com", "gitlab.example.com"): with the organisation,
    # ``source`` and repository it names the change; "" for sources that publish nowhere.
    host: str = ""
    pr: int | None = None
    ref: str | None = None
    base_ref: str | None = None
    pipeline_id: str | None = None
    pipeline_url: str | None = None
    run_attempt: int = 1
    suite: str = "tests"
    trigger: str = "ci"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def publishes(self) -> bool:
        """True when results go back to an SCM rather than nowhere."""
        return self.source in SCM_SOURCES

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready mapping, as the API takes and returns it. An empty ``host`` is
        left out: the server then keys the cycle by the organisation's SCM host, and a
        server older than the field does not refuse the body."""
        data = asdict(self)
        if not data["host"]:
            del data["host"]
        return data
