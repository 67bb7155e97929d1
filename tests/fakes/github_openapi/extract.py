"""Extract the request-body schemas the fake GitHub validates against, from GitHub's OpenAPI.

Usage (regenerates ``request_bodies.json`` beside this script):

    cd "$(mktemp -d)" && npm install @octokit/openapi
    python tests/fakes/github_openapi/extract.py \
        node_modules/@octokit/openapi/generated/api.github.com.json

$refs are resolved so the extract is self-contained, and OpenAPI 3.0's ``nullable`` is turned
into JSON Schema's ``"type": [..., "null"]`` so plain ``jsonschema`` validates it faithfully.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (method, path) of every operation the bot sends a body to; keep in step with the fake.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("patch", "/app/hook/config"),
)

OUTPUT = Path(__file__).with_name("request_bodies.json")


def resolve(node: Any, spec: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every local $ref below ``node`` and rewrite ``nullable`` for JSON Schema."""
    if isinstance(node, list):
        return [resolve(item, spec, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"recursive $ref {ref} cannot be inlined")
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return resolve(target, spec, (*seen, ref))
    out = {key: resolve(value, spec, seen) for key, value in node.items()}
    # Descriptions and examples are noise for validation and bloat the committed file.
    for noise in ("description", "example", "examples"):
        if not isinstance(out.get(noise), dict):
            out.pop(noise, None)
    if out.pop("nullable", False):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """Map ``"METHOD /path"`` to its operationId, whether a body is required, and its schema."""
    result: dict[str, Any] = {
        "_source": f"@octokit/openapi api.github.com.json, API version {spec['info']['version']}"
    }
    for method, path in OPERATIONS:
        operation = spec["paths"][path][method]
        body = operation["requestBody"]
        result[f"{method.upper()} {path}"] = {
            "operationId": operation["operationId"],
            "required": bool(body.get("required", False)),
            "schema": resolve(body["content"]["application/json"]["schema"], spec),
        }
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    OUTPUT.write_text(json.dumps(extract(spec), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
