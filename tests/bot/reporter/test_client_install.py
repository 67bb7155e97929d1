"""The client-only install (clients/report, the aac-report distribution) ships everything
`aac report` imports and nothing of the service."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.reporter.entry import main

ROOT = Path(__file__).parents[3]
CLIENT = ROOT / "clients" / "report" / "pyproject.toml"
OURS = ("bot", "providers", "config", "storage")
SERVICE_ONLY = ("sqlalchemy", "pydantic", "litellm", "starlette", "gidgethub", "gitlab", "lxml")


def _imported_by_the_client() -> list[str]:
    code = (
        "import json, sys; import bot.reporter.entry, bot.reporter.command; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    names: list[str] = json.loads(out)
    return names


def _shipped() -> list[str]:
    """Module names the client wheel contains, from its force-include table."""
    table = tomllib.loads(CLIENT.read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    modules = []
    for source, target in table["force-include"].items():
        path = (CLIENT.parent / source).resolve()
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in files:
            relative = Path(target) / file.name if path.is_dir() else Path(target)
            modules.append(".".join(relative.with_suffix("").parts).removesuffix(".__init__"))
    return modules


def test_every_module_aac_report_imports_is_in_the_client_wheel() -> None:
    imported = _imported_by_the_client()
    ours = [m for m in imported if m.split(".")[0] in OURS]
    assert set(ours) <= set(_shipped()), set(ours) - set(_shipped())
    assert not [m for m in imported if m.split(".")[0] in SERVICE_ONLY]
    assert tomllib.loads(CLIENT.read_text())["project"]["dependencies"] == ["httpx>=0.27"]


def test_the_client_command_offers_report_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert "only `aac report` is here" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert main(["report", "--server", "127.0.0.1:8000", "x.xml"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--server '127.0.0.1:8000' is not a URL aac report can use" in line
