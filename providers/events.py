"""The SCM-neutral event model: what a verified webhook asks the bot to do.

Each SCM package's inbound half parses its payloads into these (pure functions, no I/O); the
core's handlers act on them whatever the SCM. Every event names its ``source`` (the SCM
package, "github", "gitlab"...) and ``host`` (the SCM's API host, e.g. "api.github.com" or
"gitlab.example.com"), which with the organisation identify a change: GitHub PR 5 and
GitLab MR !5 of a mirrored ``acme/widgets`` are different changes.

The model lives with the provider protocol, not in ``bot/``, because the inbound parsers in
``providers/`` produce it; ``bot/events.py`` is the core's name for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

# ``/aac rerun``, ``/aac reanalyse``, ``/aac approve`` or ``/aac run [SUITE]`` at the start of
# a line of a comment; a word after ``run`` on the same line names the suite. Every gap is
# ``[^\S\n]`` (whitespace but a newline), never ``\s``: under MULTILINE a ``^\s*`` that may
# cross newlines rescans the rest of a blank comment from every line start (quadratic: a
# note of newlines held a worker for minutes, before any permission check).
COMMAND = re.compile(
    r"^[^\S\n]*/aac[^\S\n]+(rerun|reanalyse|reanalyze|approve|run)\b(?:[ \t]+(\S+))?",
    re.IGNORECASE | re.MULTILINE,
)
# How much of a comment is searched for a command: GitHub's own comment limit (65,536
# characters), so no GitHub comment is cut, while a 1 MB GitLab note or Azure DevOps comment
# costs no more to read than the longest GitHub comment; a command buried deeper is no request.
COMMAND_SEARCH_CHARS = 65_536
APPROVE = "approve"
RUN = "run"


class Command(NamedTuple):
    """A parsed ``/aac`` command: its verb, whether it re-analyses, and for ``run`` the suite
    named (None: every suite with the ``manual`` trigger). A tuple, so ``command[0]`` is the
    verb wherever an inbound parser labels its event with it."""

    verb: str
    reanalyse: bool
    suite: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where an event comes from. ``installation_id`` is the GitHub App installation that
    sent it; SCMs whose webhook URL names the organisation (GitLab, Azure DevOps) leave it
    None and the delivery carries the organisation instead."""

    source: str
    host: str
    installation_id: int | None = None
    # The API base URL the event's repository lives under (GitHub: tells hosts' App
    # installations apart); "" when the payload does not say.
    api_url: str = ""
    # The SCM's own word for what happened ("synchronize", "open"), kept on the delivery.
    scm_action: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignore(Origin):
    """Nothing to do, and why (logged)."""

    reason: str
    source: str = ""
    host: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeOpened(Origin):
    """A pull/merge request was opened or reopened (or left draft): start its suites."""

    repository: str
    number: int
    sha: str
    ref: str
    base_ref: str
    draft: bool = False
    # Where the head commits live: a fork's code must not run with the organisation's
    # secrets unless approved. None: the payload did not say (the core then assumes a fork).
    from_fork: bool | None = None
    head_repository: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeUpdated(ChangeOpened):
    """New commits arrived on an open change: start its suites at the new head."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeClosed(Origin):
    """Closed or merged: what is still pending for the change is cancelled."""

    repository: str
    number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineFinished(Origin):
    """A CI pipeline (GitHub workflow run, GitLab pipeline) finished: ingest its results."""

    repository: str
    pipeline_id: str
    sha: str
    run_attempt: int = 1
    name: str = ""  # the workflow / pipeline name suites may filter on
    ref: str | None = None
    url: str | None = None
    conclusion: str | None = None  # success, failure, cancelled, timed_out (neutral)
    number: int | None = None  # the change it ran for, when known
    base_ref: str | None = None
    # Whether the commit it ran on comes from a fork (as ChangeOpened); None: not said.
    from_fork: bool | None = None
    # Where the run lives when the payload names no repository (Azure DevOps: the project
    # id); the provider then completes the event (``CompletesPipelineEvents``).
    project: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RerunRequested(Origin):
    """Re-run (``reanalyse=False``) or re-analyse the cycles of a commit, a change or one
    cycle: a chat command (``/aac rerun`` in a comment or note) or a button in the SCM."""

    repository: str
    sha: str | None = None
    number: int | None = None
    cycle_id: str | None = None
    reanalyse: bool = False
    requested_by: str | None = None
    # A chat command: only users the SCM lets write to the repository may ask.
    needs_permission_check: bool = False

    @property
    def command(self) -> str:
        """The ``/aac`` verb that asks for this (a refusal names it)."""
        return "reanalyse" if self.reanalyse else "rerun"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunApproved(Origin):
    """``/aac approve`` on a change: a maintainer lets a fork's code run on the testing nodes."""

    repository: str
    number: int
    requested_by: str | None = None
    sha: str | None = None  # the command names no commit: the change's latest cycle
    needs_permission_check: bool = True

    @property
    def command(self) -> str:
        """The ``/aac`` verb that asks for this (a refusal names it)."""
        return APPROVE


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequested(Origin):
    """``/aac run [SUITE]`` on a change: start a suite with the ``manual`` trigger (every such
    suite when none is named) at the change's latest commit."""

    repository: str
    number: int
    suite: str | None = None
    requested_by: str | None = None
    sha: str | None = None  # the command names no commit: the change's latest cycle
    needs_permission_check: bool = True

    @property
    def command(self) -> str:
        """The ``/aac`` verb that asks for this (a refusal names it)."""
        return RUN


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationChanged(Origin):
    """The bot's installation or credentials changed (GitHub App installation events)."""

    installation_id: int | None = None
    action: str
    account_login: str
    account_type: str
    repositories_added: list[str] = field(default_factory=list)
    repositories_removed: list[str] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)
    # Which App the installation belongs to: its id, and the host in its token URL.
    app_id: int | None = None
    access_tokens_url: str = ""


Event = (
    Ignore
    | ChangeOpened
    | ChangeUpdated
    | ChangeClosed
    | PipelineFinished
    | RerunRequested
    | RunApproved
    | RunRequested
    | InstallationChanged
)


def host_of(url: str) -> str:
    """The host (and port, if any) of an API or instance URL, lower-cased; "" when none."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return ""
    return f"{host}:{port}" if host and port else host


def parse_command(text: str) -> Command | None:
    """The first ``/aac`` command of a comment (``rerun``, ``reanalyse``, ``approve``, ``run``
    with its suite, if named), else None."""
    match = COMMAND.search(text, 0, COMMAND_SEARCH_CHARS)
    if match is None:
        return None
    verb = {"reanalyze": "reanalyse"}.get(match.group(1).lower(), match.group(1).lower())
    # Only ``run`` takes an argument; words after the other verbs stay ignored as before.
    suite = match.group(2) if verb == RUN else None
    return Command(verb, verb == "reanalyse", suite)


def chat_command(
    command: Command,
    origin: dict[str, Any],
    *,
    repository: str,
    number: int,
    requested_by: str | None,
) -> RerunRequested | RunApproved | RunRequested:
    """The event a parsed ``/aac`` command on a change asks for, whichever SCM it came from;
    every such command is checked against the requester's permission."""
    verb, reanalyse, suite = command
    if verb == APPROVE:
        return RunApproved(
            **origin, repository=repository, number=number, requested_by=requested_by
        )
    if verb == RUN:
        return RunRequested(
            **origin, repository=repository, number=number, suite=suite, requested_by=requested_by
        )
    return RerunRequested(
        **origin,
        repository=repository,
        number=number,
        reanalyse=reanalyse,
        requested_by=requested_by,
        needs_permission_check=True,
    )
