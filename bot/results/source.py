"""Turning an uploaded binary stream into bounded, decompressed XML bytes plus a head to sniff."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from bot.results.errors import ErrorCode, ResultFileError
from bot.results.limits import ParseLimits

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024  # the root element must start within this many (decompressed) bytes
_CHUNK = 64 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw zlib


class Readable(Protocol):
    """Anything with a binary `read(size)`: files, upload spools, our own wrappers."""

    def read(self, size: int = -1, /) -> bytes: ...


class _LimitedReader:
    """Counts bytes as they pass and rejects the file the moment the limit is crossed."""

    def __init__(self, raw: Readable, *, limit: int, filename: str, what: str) -> None:
        self._raw = raw
        self._limit = limit
        self._filename = filename
        self._what = what
        self._count = 0

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            # "read everything" is never unbounded here: loop in chunks up to the limit.
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        data = self._raw.read(size)
        self._count += len(data)
        if self._count > self._limit:
            raise ResultFileError(
                ErrorCode.TOO_LARGE,
                f"{self._what} exceeds the limit of {self._limit} bytes",
                filename=self._filename,
            )
        return data


class _Gunzip:
    """Streaming gzip decompression (concatenated members too), never more than `size` bytes
    per read, so a gzip bomb is only ever inflated one chunk at a time."""

    def __init__(self, raw: Readable, *, filename: str) -> None:
        self._raw = raw
        self._filename = filename
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        size = size if size is not None and size > 0 else _CHUNK
        while not self._done:
            inflater = self._inflater
            if inflater.eof:
                data = inflater.unused_data or self._raw.read(_CHUNK)
                if not data:
                    self._done = True
                    break
                inflater = self._inflater = zlib.decompressobj(_GZIP_WBITS)  # next member
            else:
                data = inflater.unconsumed_tail or self._raw.read(_CHUNK)
                if not data:
                    raise self._error("the gzip stream is truncated")
            try:
                out = inflater.decompress(data, size)
            except zlib.error as exc:
                raise self._error(f"corrupt gzip data ({exc})") from None
            if out:
                return out
        return b""

    def _error(self, detail: str) -> ResultFileError:
        return ResultFileError(ErrorCode.INVALID_GZIP, detail, filename=self._filename)


class _Prefixed:
    """Replays bytes already read (for sniffing) before continuing with the stream."""

    def __init__(self, prefix: bytes, rest: Readable) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._prefix:
            if size is None or size < 0 or size >= len(self._prefix):
                data, self._prefix = self._prefix, b""
            else:
                data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._rest.read(size)


def _read_up_to(reader: Readable, size: int) -> bytes:
    """Read until `size` bytes or end of stream (a single read may return less)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = reader.read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class XmlSource:
    """Decompressed XML: its first bytes (for format detection) and the stream after them."""

    head: bytes
    rest: Readable
    compressed: bool

    def reader(self, head: bytes | None = None) -> Readable:
        """A reader from byte 0, replaying `head` (default: the bytes as read) first."""
        return _Prefixed(self.head if head is None else head, self.rest)


def open_source(stream: BinaryIO | Readable, *, filename: str, limits: ParseLimits) -> XmlSource:
    """Wrap `stream` with size limits and streaming gunzip (detected by magic bytes)."""
    raw = _LimitedReader(stream, limit=limits.max_file_bytes, filename=filename, what="file")
    first = _read_up_to(raw, len(GZIP_MAGIC))
    compressed = first == GZIP_MAGIC
    replay = _Prefixed(first, raw)
    inner: Readable = _Gunzip(replay, filename=filename) if compressed else replay
    xml = _LimitedReader(
        inner,
        limit=limits.max_decompressed_bytes,
        filename=filename,
        what="decompressed content" if compressed else "file",
    )
    head = _read_up_to(xml, HEAD_BYTES)
    return XmlSource(head=head, rest=xml, compressed=compressed)
