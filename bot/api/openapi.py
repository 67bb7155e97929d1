"""The OpenAPI 3.1 description of the CI API, served at ``/api/v1/openapi.json``.

A test keeps it in sync with the routes the app serves.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.api.runners_openapi import RUNNER_PATHS

_ERROR = {"$ref": "#/components/schemas/Error"}
_CYCLE = {"$ref": "#/components/schemas/Cycle"}
_ID = {"name": "cycle_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Missing or invalid API key",
        403: "The API key lacks the scope this needs (required_scope names it)",
        404: "No such cycle in this organisation",
        409: "The cycle no longer accepts this",
        413: "Too large",
        422: "Invalid field or result file",
        429: "Rate limited; see Retry-After",
        503: "The SCM failed; try again later",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_HOST = {
    "type": "string",
    "description": "the SCM's API host; default: where the organisation's credentials for "
    "the source point",
}
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_OUTCOME = {"enum": ["success", "failure", "cancelled", "timed_out", None]}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "aac-bot CI API", "version": "1"},
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer"},
            "runnerToken": {"type": "http", "scheme": "bearer"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string"},
                    "detail": {"type": "string"},
                    "file": {"type": "string"},
                    "line": {"type": "integer"},
                    "column": {"type": "integer"},
                    "field": {"type": "string"},
                },
            },
            "CycleCreate": {
                "type": "object",
                "required": ["source", "repository", "sha"],
                "additionalProperties": False,
                "properties": {
                    "source": {
                        "type": "string",
                        "description": "github, gitlab, azure or a runner",
                    },
                    "host": _HOST,
                    "repository": {"type": "string"},
                    "sha": {"type": "string"},
                    "pr": _NULLABLE_INT,
                    "ref": _NULLABLE_STR,
                    "base_ref": _NULLABLE_STR,
                    "pipeline_id": _NULLABLE_STR,
                    "pipeline_url": _NULLABLE_STR,
                    "run_attempt": {"type": "integer", "default": 1},
                    "suite": {"type": "string", "default": "tests"},
                    "trigger": {"type": "string", "default": "ci"},
                },
            },
            "ManualCycleCreate": {
                "type": "object",
                "required": ["source", "repository", "sha", "suite"],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string", "description": "github, gitlab or azure"},
                    "host": _HOST,
                    "repository": {"type": "string"},
                    "sha": {"type": "string"},
                    "suite": {
                        "type": "string",
                        "description": "a suite of .aac.yml at the commit whose triggers "
                        "include manual",
                    },
                },
            },
            "Totals": {
                "type": "object",
                "properties": {
                    k: {"type": "integer"}
                    for k in ("total", "passed", "failed", "errored", "skipped", "flaky")
                },
            },
            "Cycle": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "url": {"type": "string"},
                    "report_url": {"type": "string"},
                    "upload_url": {"type": "string"},
                    "complete_url": {"type": "string"},
                    "status": {
                        "enum": [
                            "collecting",
                            "analysing",
                            "done",
                            "infra_error",
                            "cancelled",
                            "superseded",
                        ]
                    },
                    "totals": {"$ref": "#/components/schemas/Totals"},
                    "outcome": _OUTCOME,
                    "timeout_seconds": _NULLABLE_INT,
                    "summary": _NULLABLE_STR,
                    "published": {"type": "object"},
                    "superseded_by": {
                        **_NULLABLE_STR,
                        "description": "The id of the cycle that replaced this one: a newer "
                        "commit of the pull request started this suite, or the same commit ran "
                        "it again (its run_attempt is this one's plus one). A cycle superseded "
                        "by a newer commit before its results were in has status superseded; a "
                        "finished one keeps done or infra_error, and its results and report.",
                    },
                    "superseded_by_url": _NULLABLE_STR,
                },
            },
        },
    },
    "security": [{"apiKey": []}],
    "paths": {
        "/api/v1/cycles": {
            "post": {
                "summary": "Start a test cycle (idempotent)",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CycleCreate"}}
                    },
                },
                "responses": {
                    "201": _ok("Created", _CYCLE),
                    "200": _ok("An existing cycle with the same key", _CYCLE),
                    **_errors(400, 401, 422, 429),
                },
            },
            "get": {
                "summary": "List cycles",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": t}}
                    for n, t in (
                        ("repository", "string"),
                        ("pr", "integer"),
                        ("sha", "string"),
                        ("limit", "integer"),
                    )
                ],
                "responses": {
                    "200": _ok(
                        "Cycles, newest first",
                        {
                            "type": "object",
                            "properties": {"cycles": {"type": "array", "items": _CYCLE}},
                        },
                    ),
                    **_errors(401, 422, 429),
                },
            },
        },
        "/api/v1/cycles/manual": {
            "post": {
                "summary": "Start a suite with the manual trigger at a commit (as /aac run)",
                "description": "Needs a key with scope run. 409 unknown_commit: no pull "
                "request or pipeline event named the commit (the fork rule's facts come from "
                "one); 409 scm_unavailable: the SCM refused the credentials; 429 "
                "scm_rate_limited with Retry-After; 503 scm_error: the SCM failed.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ManualCycleCreate"}
                        }
                    },
                },
                "responses": {
                    "201": _ok("Started: its status is queued, a run suite's job too", _CYCLE),
                    "200": _ok("The suite's cycle at the commit that is still running", _CYCLE),
                    **_errors(400, 401, 403, 404, 409, 422, 429, 503),
                },
            }
        },
        "/api/v1/cycles/{cycle_id}": {
            "get": {
                "summary": "Read a cycle",
                "parameters": [_ID],
                "responses": {"200": _ok("The cycle", _CYCLE), **_errors(401, 404, 429)},
            }
        },
        "/api/v1/cycles/{cycle_id}/results": {
            "post": {
                "summary": "Upload result files (JUnit, xUnit.net v1/v2, NUnit 2/3, TRX; gzip)",
                "description": (
                    "A repeat of a file (same Idempotency-Key, or the same content after gzip, "
                    "in this cycle) replaces its results instead of adding them. Bodies are "
                    "counted as they stream, chunked or not: over a limit is a 413."
                ),
                "parameters": [
                    _ID,
                    {"name": "X-Filename", "in": "header", "schema": {"type": "string"}},
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    }
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "200": _ok("Stored", {"type": "object"}),
                    **_errors(400, 401, 404, 409, 413, 422, 429),
                },
            }
        },
        "/api/v1/cycles/{cycle_id}/complete": {
            "post": {
                "summary": "Close the cycle and queue its analysis and publishing",
                "parameters": [_ID],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "outcome": {
                                        "enum": [
                                            "success",
                                            "failure",
                                            "cancelled",
                                            "timed_out",
                                            None,
                                        ]
                                    },
                                    "exit_code": _NULLABLE_INT,
                                    "timeout_seconds": {
                                        "type": ["integer", "null"],
                                        "minimum": 1,
                                        "description": "With outcome timed_out: the limit the "
                                        "run hit, which the report names.",
                                    },
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "202": _ok("Queued", _CYCLE),
                    **_errors(400, 401, 404, 409, 422, 429),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": {"200": _ok("OpenAPI 3.1", {"type": "object"})},
            }
        },
        **RUNNER_PATHS,
    },
}


async def openapi_json(_request: Request) -> JSONResponse:
    return JSONResponse(SPEC)


ROUTES = [Route("/api/v1/openapi.json", openapi_json)]
