"""Size limits applied while a result file is streamed (all enforced before memory is spent)."""

from __future__ import annotations

from dataclasses import dataclass

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds for one result file; exceeding a byte or case limit rejects the file."""

    max_file_bytes: int = 100 * _MIB  # bytes read from the stream (compressed, if gzip)
    max_decompressed_bytes: int = 256 * _MIB  # XML bytes fed to the parser
    max_test_cases: int = 250_000
    # The limits below truncate what is kept; they never reject a file.
    max_message_chars: int = 4_096
    max_stack_chars: int = 32_768
    max_output_tail_chars: int = 4_096  # stdout / stderr keep their last characters

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) <= 0:
                raise ValueError(f"ParseLimits.{name} must be positive")


DEFAULT_LIMITS = ParseLimits()
