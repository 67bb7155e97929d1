"""The per-repository file ``.aac.yml``: which suites run on which triggers.

Absent file: one suite named ``tests``, started by pull requests (drafts excluded) and fed by
any GitHub Actions workflow run whose artifacts look like test results.
"""

from __future__ import annotations

import fnmatch
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_PATH = ".aac.yml"
MAX_CONFIG_BYTES = 64 * 1024

Trigger = Literal["pull_request", "workflow_run", "ci"]


_DEFAULT_TRIGGERS: list[Trigger] = ["pull_request", "workflow_run"]


class RepoConfigError(Exception):
    """The file is not valid YAML or does not match the schema; the message says where."""


class SuiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="tests", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    triggers: list[Trigger] = Field(default_factory=lambda: _DEFAULT_TRIGGERS.copy())
    drafts: bool = False
    workflows: list[str] = Field(default_factory=list)  # workflow names; empty = all
    artifacts: list[str] = Field(
        default_factory=lambda: ["*test*", "*junit*", "*result*", "*report*"]
    )
    files: list[str] = Field(default_factory=lambda: ["*.xml", "*.trx"])

    def accepts_workflow(self, name: str) -> bool:
        return not self.workflows or name in self.workflows

    def wants_artifact(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name.lower(), p.lower()) for p in self.artifacts)

    def wants_file(self, path: str) -> bool:
        base = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(base, p) or fnmatch.fnmatch(path, p) for p in self.files)


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    suites: list[SuiteConfig] = Field(default_factory=lambda: [SuiteConfig()], min_length=1)

    def suites_for(self, trigger: Trigger, *, draft: bool = False) -> list[SuiteConfig]:
        """The suites this trigger starts; drafts only where a suite opts in."""
        return [s for s in self.suites if trigger in s.triggers and (s.drafts or not draft)]


DEFAULT_CONFIG = RepoConfig()


def parse_repo_config(text: str | bytes | None) -> RepoConfig:
    """Parse ``.aac.yml``; None or an empty file gives the documented default."""
    if text is None:
        return DEFAULT_CONFIG
    if len(text) > MAX_CONFIG_BYTES:
        raise RepoConfigError(f"{CONFIG_PATH} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RepoConfigError(f"{CONFIG_PATH} is not valid YAML{where}") from None
    if data is None:
        return DEFAULT_CONFIG
    if not isinstance(data, dict):
        raise RepoConfigError(f"{CONFIG_PATH} must be a mapping with a 'suites' list")
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RepoConfigError(f"{CONFIG_PATH}: {where}: {first['msg']}") from None
