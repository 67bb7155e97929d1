"""Reading result-file uploads (multipart or a raw body) into bounded temporary files.

Every byte is counted as it arrives, before it is spooled: a chunked body without a
Content-Length is stopped at the limit like any other, and a gzip body is inflated as it
streams (one bounded piece at a time) so its expanded size is bounded too. The same pass
hashes the file's content, which is how a repeated upload is recognised.
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import IO

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from bot.api.errors import ApiError

SPOOL_BYTES = 8 * 1024 * 1024
MAX_FILES_PER_REQUEST = 200
MAX_KEY_CHARS = 200
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_PIECE = 256 * 1024  # most bytes one inflate step may produce: a bomb never lands whole
_READ = 64 * 1024


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Bytes one file may have on the wire and after gzip, and one request in all."""

    file_bytes: int
    expanded_bytes: int
    request_bytes: int


@dataclass(slots=True)
class Upload:
    """One received file: spooled, measured, and known by its content's SHA-256."""

    name: str
    file: IO[bytes]
    size: int
    sha256: str
    # The client's Idempotency-Key (raw bodies; a multipart upload is known by content only).
    key: str | None = None


def _too_large(name: str, limit: int, what: str, setting: str) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"{name}: {what} over the {limit:,}-byte limit ({setting}); "
        "split the report or raise the limit",
        file=name,
    )


class ContentMeter:
    """Counts one file's bytes as they are fed (and, for gzip, the bytes they expand to),
    rejecting it at the first byte over a limit, and hashes the content as parsed."""

    def __init__(self, name: str, limits: UploadLimits) -> None:
        self.name = name
        self.size = 0
        self.expanded = 0
        self._limits = limits
        self._digest = hashlib.sha256()
        self._head = b""
        self._gzip: bool | None = None
        self._inflater: zlib._Decompress | None = None

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk; ApiError 413 once a limit is crossed."""
        self.size += len(chunk)
        if self.size > self._limits.file_bytes:
            raise _too_large(
                self.name, self._limits.file_bytes, "larger than", "AAC_MAX_RESULT_FILE_BYTES"
            )
        if self._gzip is None:
            self._head += chunk
            if len(self._head) < len(GZIP_MAGIC):
                return
            chunk, self._head = self._head, b""
            self._gzip = chunk.startswith(GZIP_MAGIC)
        if self._gzip:
            self._inflate(chunk)
        else:
            self._count_expanded(chunk)

    def sha256(self) -> str:
        """The hex SHA-256 of everything fed (inflated, for gzip)."""
        if self._head:  # a body shorter than the gzip magic
            self._count_expanded(self._head)
            self._head = b""
        return self._digest.hexdigest()

    def _count_expanded(self, data: bytes) -> None:
        self.expanded += len(data)
        if self.expanded > self._limits.expanded_bytes:
            raise _too_large(
                self.name,
                self._limits.expanded_bytes,
                "expands (gzip) to more than",
                "AAC_MAX_EXPANDED_RESULT_BYTES",
            )
        self._digest.update(data)

    def _inflate(self, data: bytes) -> None:
        try:
            while data:
                if self._inflater is None:
                    self._inflater = zlib.decompressobj(_GZIP_WBITS)
                self._count_expanded(self._inflater.decompress(data, _PIECE))
                data = self._inflater.unconsumed_tail
                if self._inflater.eof:  # concatenated gzip members: start the next one
                    data = self._inflater.unused_data + data
                    self._inflater = None
        except zlib.error as exc:
            raise ApiError(
                422, "invalid_gzip", f"{self.name}: corrupt gzip data ({exc})", file=self.name
            ) from None


async def read_uploads(request: Request, limits: UploadLimits) -> list[Upload]:
    """The uploaded files of a request, each spooled to a bounded temporary file."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.request_bytes:
        raise _request_too_large(limits.request_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _multipart(request, limits)
    name = safe_name(request.headers.get("x-filename") or "upload")
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_KEY_CHARS:
        raise ApiError(422, "invalid_header", f"Idempotency-Key must be 1-{MAX_KEY_CHARS} chars")
    meter = ContentMeter(name, limits)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    try:
        async for chunk in _counted(request, limits.request_bytes):
            meter.feed(chunk)
            spool.write(chunk)
        sha = meter.sha256()
    except BaseException:
        spool.close()
        raise
    if meter.size == 0:
        spool.close()
        raise ApiError(400, "empty_upload", f"{name}: the request body is empty", file=name)
    spool.seek(0)
    return [Upload(name, spool, meter.size, sha, key)]


def _request_too_large(limit: int) -> ApiError:
    return ApiError(
        413, "too_large", f"request body over the {limit:,}-byte limit (AAC_MAX_UPLOAD_BYTES)"
    )


async def _counted(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives, stopped at the first chunk past ``limit`` bytes."""
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _request_too_large(limit)
            yield chunk
    except ClientDisconnect:
        raise ApiError(400, "incomplete_body", "the client went away mid-upload") from None


async def _multipart(request: Request, limits: UploadLimits) -> list[Upload]:
    parser = MultiPartParser(
        request.headers,
        _counted(request, limits.request_bytes),
        max_files=MAX_FILES_PER_REQUEST,
        max_fields=50,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(
            400, "invalid_multipart", f"could not read the multipart body: {exc}"
        ) from None
    files = [(field, v) for field, v in form.multi_items() if isinstance(v, UploadFile)]
    try:
        uploads = [await _measured(field, value, limits) for field, value in files]
    except BaseException:
        await form.close()
        raise
    if not uploads:
        raise ApiError(400, "no_files", "the multipart body has no file parts")
    return uploads


async def _measured(field: str, value: UploadFile, limits: UploadLimits) -> Upload:
    """A spooled part, metered like a raw body (its size on the wire is already bounded by
    the request's limit; this bounds the file's own and its gzip-expanded size)."""
    name = safe_name(value.filename or field)
    meter = ContentMeter(name, limits)
    await value.seek(0)
    while chunk := await value.read(_READ):
        meter.feed(chunk)
    await value.seek(0)
    return Upload(name, value.file, meter.size, meter.sha256())


def safe_name(name: str) -> str:
    """A display name for a file: printable, bounded, no control characters."""
    cleaned = "".join(ch for ch in name if ch.isprintable())[:300]
    return cleaned or "upload"
