"""The per-repository file ``.aac.yml``: which suites run on which triggers.

Absent file: one suite named ``tests``, started by pull requests (drafts excluded) and fed by
any finished pipeline (a GitHub Actions workflow run) whose artifacts look like test results.

A suite either takes reported results (``report``, the default: ``aac report`` or pipeline
artifacts) or has the bot's testing nodes execute a command (``run``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

CONFIG_PATH = ".aac.yml"
MAX_CONFIG_BYTES = 64 * 1024
MAX_PROBLEMS = 10  # more would bury the first, which often causes the rest

Trigger = Literal["pull_request", "pipeline_finished", "manual", "ci"]
# Earlier names that keep working: GitHub's event name for a finished pipeline.
TRIGGER_ALIASES = {"workflow_run": "pipeline_finished"}

_DEFAULT_TRIGGERS: list[Trigger] = ["pull_request", "pipeline_finished"]
MAX_RUN_TIMEOUT_SECONDS = 24 * 3600
# Names the runner sets itself, or that would change how git or the runner behave.
_RESERVED_ENV = re.compile(r"^(AAC_|GIT_)|^(PATH|HOME)$")
# A literal value under such a name is almost certainly a credential pasted into the file.
_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the file: what, and where (key path, 1-based line) when known."""

    message: str
    key: str | None = None  # e.g. "suites[0].triggers[0]"
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        where += [self.key] if self.key else []
        return ": ".join([CONFIG_PATH, *where, self.message])


class RepoConfigError(Exception):
    """The file is not valid YAML or does not match the schema; ``problems`` say where."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems) or (ConfigProblem("the file is invalid"),)
        more = len(self.problems) - 1
        super().__init__(str(self.problems[0]) + (f" (and {more} more)" if more else ""))


class SecretRef(BaseModel):
    """An environment value kept in the organisation's vault: ``{secret: NAME}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")


def _env_kind(value: Any) -> str:
    return _SECRET_TAG if isinstance(value, dict | SecretRef) else _TEXT_TAG


# Union tags appear in pydantic's error locations; bracketed so _key_path can drop them.
_TEXT_TAG, _SECRET_TAG = "[text]", "[secret]"
EnvValue = Annotated[
    Annotated[str, Tag(_TEXT_TAG)] | Annotated[SecretRef, Tag(_SECRET_TAG)],
    Discriminator(_env_kind),
]


class RunConfig(BaseModel):
    """A command the testing nodes execute at the commit, and where its result files are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1, max_length=10_000)
    image: str | None = Field(default=None, min_length=1, max_length=300)
    workdir: str = Field(default=".", min_length=1, max_length=500)
    env: dict[str, EnvValue] = Field(default_factory=dict, max_length=100)
    timeout: int = Field(default=1800, ge=1, le=MAX_RUN_TIMEOUT_SECONDS)  # seconds
    results: str = Field(default="**/*.xml", min_length=1, max_length=500)
    labels: list[str] = Field(
        default_factory=list,
        max_length=20,
    )

    @field_validator("workdir", "results")
    @classmethod
    def _inside_checkout(cls, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts:
            raise ValueError("must be a path inside the repository (relative, without '..')")
        return value

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*", value):
            raise ValueError("must be a container image reference such as python:3.12-slim")
        return value

    @field_validator("labels")
    @classmethod
    def _label_shape(cls, value: list[str]) -> list[str]:
        for label in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,50}", label):
                raise ValueError(
                    "labels may contain only letters, digits, '.', '_' and '-' (1-50 characters)"
                )
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        # YAML reads `PORT: 8080` as a number; the environment only holds text.
        if isinstance(value, dict):
            return {
                k: (str(v).lower() if isinstance(v, bool) else str(v))
                if isinstance(v, int | float)
                else v
                for k, v in value.items()
            }
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        for name, item in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if _RESERVED_ENV.search(name):
                raise ValueError(f"{name} is reserved; the runner sets it or it changes git")
            if isinstance(item, str) and _SECRET_NAME.search(name):
                # The value is never echoed: it is probably the secret itself.
                raise ValueError(
                    f"{name} looks like a secret: never write its value here; store it with "
                    f"`aac runner secret set --org ORG --name {name}` and write "
                    f"{name}: {{secret: {name}}}"
                )
        return value

    def secret_names(self) -> list[str]:
        """The vault entries this command's environment refers to."""
        return sorted({v.secret for v in self.env.values() if isinstance(v, SecretRef)})


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
    # Results come from CI (`aac report`, pipeline artifacts): today's default.
    report: bool | None = None
    # ...or the bot's testing nodes run a command.
    run: RunConfig | None = None

    @field_validator("triggers", mode="before")
    @classmethod
    def _trigger_aliases(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [TRIGGER_ALIASES.get(t, t) if isinstance(t, str) else t for t in value]
        return value

    @model_validator(mode="after")
    def _report_or_run(self) -> SuiteConfig:
        if self.run is not None and self.report:
            raise ValueError(
                "a suite either runs a command (run) or takes reported results (report), not both"
            )
        return self

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

    def suites_for(
        self, trigger: Trigger | Literal["workflow_run"], *, draft: bool = False
    ) -> list[SuiteConfig]:
        """The suites this trigger starts; drafts only where a suite opts in.

        ``workflow_run`` is accepted as the earlier name of ``pipeline_finished``.
        """
        wanted = TRIGGER_ALIASES.get(trigger, trigger)
        return [s for s in self.suites if wanted in s.triggers and (s.drafts or not draft)]


DEFAULT_CONFIG = RepoConfig()


def parse_repo_config(text: str | bytes | None) -> RepoConfig:
    """Parse ``.aac.yml``; None or an empty file gives the documented default."""
    if text is None:
        return DEFAULT_CONFIG
    if len(text) > MAX_CONFIG_BYTES:
        raise RepoConfigError(
            [ConfigProblem(f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB")]
        )
    root, data = _load_yaml(text)
    if data is None:
        return DEFAULT_CONFIG
    if not isinstance(data, dict):
        raise RepoConfigError(
            [ConfigProblem("the file must be a mapping with a 'suites' list", line=1, column=1)]
        )
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()[:MAX_PROBLEMS]
        raise RepoConfigError([_schema_problem(root, e) for e in errors]) from None


def _load_yaml(text: str | bytes) -> tuple[yaml.Node | None, Any]:
    """The node tree (it keeps line numbers) and the data built from it, in one pass."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # reads (and decodes) the start of the text already
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    except yaml.reader.ReaderError as exc:
        # Bytes that are not UTF-8/16, or control characters YAML forbids: no mark, an offset.
        head = text[: exc.position]
        line = (head.count(b"\n") if isinstance(head, bytes) else head.count("\n")) + 1
        decoding = exc.encoding not in (None, "unicode")  # "unicode": decoded, then refused
        problem = "not UTF-8 text" if decoding else f"not valid YAML: {exc.reason}"
        raise RepoConfigError([ConfigProblem(problem, line=line)]) from None
    except yaml.YAMLError as exc:
        # PyYAML's own message quotes the file with a caret; the problem and mark suffice.
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "the file could not be parsed"
        raise RepoConfigError(
            [
                ConfigProblem(
                    f"not valid YAML: {problem}",
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                )
            ]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _key_path(loc: Sequence[int | str]) -> str:
    """Pydantic's location as the user reads the file: ``suites[0].triggers``."""
    path = ""
    for part in loc:
        if not path:
            path = str(part)  # a top-level int is a (non-string) key, not an index
        else:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _allowed_keys(loc: Sequence[int | str]) -> list[str] | None:
    """The keys the mapping holding ``loc``'s last key accepts."""
    if len(loc) == 1:
        return list(RepoConfig.model_fields)
    if len(loc) == 3 and loc[0] == "suites" and isinstance(loc[1], int):
        return list(SuiteConfig.model_fields)
    if len(loc) == 4 and loc[0] == "suites" and loc[2] == "run":
        return list(RunConfig.model_fields)
    if len(loc) >= 6 and loc[2] == "run" and loc[3] == "env":
        return list(SecretRef.model_fields)
    return None


def _schema_message(error: ErrorDetails) -> str:
    """Pydantic's message, reworded where it names internals; never the offending value."""
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys([p for p in error["loc"] if not str(p).startswith("[")])
        return "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    if kind == "model_type":
        return "must be a mapping of keys to values (for example: name: unit)"
    if kind == "string_pattern_mismatch":
        return "may contain only letters, digits, '.', '_' and '-'"
    if kind == "invalid_key":
        return "keys must be strings"
    if kind == "literal_error" and error["loc"][-2:-1] == ("triggers",):
        return "unknown trigger; use pull_request, pipeline_finished (or workflow_run), manual, ci"
    return str(error["msg"]).removeprefix("Value error, ")


def _schema_problem(root: yaml.Node | None, error: ErrorDetails) -> ConfigProblem:
    # Without union tags: they name no key in the file.
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("[")))
    mark = _locate(root, loc, key=error["type"] == "extra_forbidden")
    return ConfigProblem(
        _schema_message(error),
        key=_key_path(loc) or None,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
    )


def _locate(root: yaml.Node | None, loc: Sequence[int | str], *, key: bool) -> yaml.Mark | None:
    """Where ``loc`` is in the file: its key when ``key`` (an unknown key), else its value.

    Stops at the deepest node found, so a path through an alias still gets a nearby line.
    """
    node, mark = root, root.start_mark if root is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    child, mark = value_node, key_node.start_mark
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            mark = child.start_mark
        if child is None:
            return mark
        node = child
    if not key and node is not None:
        mark = node.start_mark
    return mark
