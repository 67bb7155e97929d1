"""Reading result-file uploads (multipart or a raw body) into bounded temporary files."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO

from starlette.datastructures import UploadFile
from starlette.requests import Request

from bot.api.errors import ApiError

SPOOL_BYTES = 8 * 1024 * 1024
MAX_FILES_PER_REQUEST = 200


@dataclass(slots=True)
class Upload:
    name: str
    file: IO[bytes]
    size: int


def _too_large(name: str, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"{name}: larger than the {limit:,}-byte limit (AAC_MAX_RESULT_FILE_BYTES); "
        "split the report or raise the limit",
        file=name,
    )


async def read_uploads(request: Request, *, max_file_bytes: int, max_total: int) -> list[Upload]:
    """The uploaded files of a request, each spooled to a bounded temporary file."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_total:
        raise ApiError(
            413,
            "too_large",
            f"request body over the {max_total:,}-byte limit (AAC_MAX_UPLOAD_BYTES)",
        )
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _multipart(request, max_file_bytes)
    name = _safe_name(request.headers.get("x-filename") or "upload")
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_file_bytes:
            spool.close()
            raise _too_large(name, max_file_bytes)
        spool.write(chunk)
    if size == 0:
        spool.close()
        raise ApiError(400, "empty_upload", f"{name}: the request body is empty", file=name)
    spool.seek(0)
    return [Upload(name, spool, size)]


async def _multipart(request: Request, max_file_bytes: int) -> list[Upload]:
    try:
        form = await request.form(max_files=MAX_FILES_PER_REQUEST, max_fields=50)
    except Exception as exc:  # starlette raises HTTPException / MultiPartException variants
        raise ApiError(
            400, "invalid_multipart", f"could not read the multipart body: {exc}"
        ) from None
    uploads: list[Upload] = []
    for _field, value in form.multi_items():
        if not isinstance(value, UploadFile):
            continue
        name = _safe_name(value.filename or _field)
        size = value.size if value.size is not None else 0
        if size > max_file_bytes:
            raise _too_large(name, max_file_bytes)
        value.file.seek(0)
        uploads.append(Upload(name, value.file, size))
    if not uploads:
        raise ApiError(400, "no_files", "the multipart body has no file parts")
    return uploads


def _safe_name(name: str) -> str:
    """A display name for a file: printable, bounded, no control characters."""
    cleaned = "".join(ch for ch in name if ch.isprintable())[:300]
    return cleaned or "upload"
