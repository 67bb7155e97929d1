"""The OpenAPI description of the runner API (``/api/v1/runners/...``), merged into the
served document; authenticated by runner token (by registration token for ``register``)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ERRORS = {
    "401": "Missing, invalid or revoked token",
    "404": "No such job",
    "409": "The job is not held by this runner any more",
    "422": "Invalid body",
}


def _op(summary: str, ok: str, *, job: bool = True, body: dict[str, Any] | None = None) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"runnerToken": []}],
        "responses": {
            "200": {
                "description": ok,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **{
                code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
                for code, text in _ERRORS.items()
            },
        },
    }
    if job:
        operation["parameters"] = [_JOB_ID]
    if body is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return {"post": operation}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_J = "/api/v1/runners/jobs/{job_id}"
RUNNER_PATHS: dict[str, Any] = {
    "/api/v1/runners/register": _op(
        "Trade a registration token for a runner token (201, shown once)",
        "Registered",
        job=False,
        body=_object(name={"type": "string"}, labels={"type": "array"}),
    ),
    "/api/v1/runners/jobs/next": _op(
        "Long-poll for a job matching the runner's labels (204 when none within `wait` s)",
        "A job, assigned under a lease",
        job=False,
        body=_object(labels={"type": "array"}),
    ),
    f"{_J}/credential": _op(
        "The job's short-lived git credential and secret environment values", "Credential"
    ),
    f"{_J}/started": _op("The command started; the answer says whether it is cancelled", "Ok"),
    f"{_J}/heartbeat": _op("Renew the lease; the answer says whether it is cancelled", "Ok"),
    f"{_J}/log": _op(
        "One bounded chunk of output, masked before it is stored",
        "Stored",
        body=_object(seq={"type": "integer"}, text={"type": "string"}),
    ),
    f"{_J}/results": _op("Result files (multipart), as `POST /api/v1/cycles/{id}/results`", "Ok"),
    f"{_J}/finish": _op(
        "The exit code, a timeout, a cancellation or why the command could not run",
        "Recorded",
        body=_object(
            exit_code={"type": ["integer", "null"]},
            timed_out={"type": "boolean"},
            cancelled={"type": "boolean"},
            error={"type": ["string", "null"]},
        ),
    ),
}
