"""Which suites a manual start (``/aac run [SUITE]``, ``aac cycles run``, the API) may start,
and why not, in words for the person who asked. Pure: no I/O."""

from __future__ import annotations

import re

from config.repo_config import CONFIG_PATH, RepoConfig, SuiteConfig

MANUAL = "manual"
# A suite's name as .aac.yml allows it; anything else from a comment is never echoed back.
_SUITE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class ManualRunRefused(Exception):
    """Nothing to start; ``code`` names why for the API (``status`` its HTTP status) and the
    message says it to a person, quoting only suite names .aac.yml could hold."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        startable: tuple[str, ...] = (),
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.startable = startable  # the suites a manual start may name instead
        self.retry_after = retry_after  # seconds, when asking again later may succeed


def chat_reply(refused: ManualRunRefused) -> str:
    """The refusal as an answer to ``/aac run ...``: when another name would have worked, the
    exact syntax too (``/aac run please`` names a suite "please": the word after is the name)."""
    if not refused.startable:
        return refused.message
    return (
        f"{refused.message} Comment `/aac run SUITE` to start one (the word after `/aac run` "
        f"is the suite's name, for example `/aac run {refused.startable[0]}`), or `/aac run` "
        "alone to start them all."
    )


def manual_suites(config: RepoConfig, name: str | None, sha: str) -> list[SuiteConfig]:
    """The named suite, or with no name every suite with the ``manual`` trigger that a testing
    node runs; refused when the name is unknown, lacks that trigger, takes its results from CI
    (nothing would fill its cycle: the pipeline at that commit already ran), or none is left."""
    manual = [s for s in config.suites if MANUAL in s.triggers and s.run is not None]
    where = f"`{CONFIG_PATH}` at {sha[:12]}"
    names = tuple(s.name for s in manual)
    startable = ", ".join(f"`{n}`" for n in names) or "none (no suite run by a node has `manual`)"
    if name is None:
        if not manual:
            raise ManualRunRefused(
                "no_manual_suite",
                422,
                f"no suite in {where} that a testing node runs has the `manual` trigger: add "
                "`manual` to such a suite's `triggers` to start it by hand (a suite taking its "
                "results from CI is re-run with its pipeline, `/aac rerun`).",
            )
        return manual
    named = [s for s in config.suites if s.name == name]
    if not named:
        shown = f"`{name}`" if _SUITE_NAME.fullmatch(name) else "by that name"
        raise ManualRunRefused(
            "suite_not_found",
            404,
            f"{where} has no suite {shown}; suites that can be started by hand: {startable}.",
            names,
        )
    suite = named[0]
    if MANUAL in suite.triggers and suite.run is None:
        raise ManualRunRefused(
            "suite_not_runnable",
            422,
            f"suite `{suite.name}` takes its results from CI; re-run the pipeline instead "
            "(`/aac rerun`).",
            names,
        )
    if MANUAL not in suite.triggers:
        triggers = ", ".join(suite.triggers) or "none"
        raise ManualRunRefused(
            "suite_not_manual",
            422,
            f"suite `{suite.name}` cannot be started by hand: its triggers in {where} are "
            f"{triggers}; add `manual` to them. Suites that can: {startable}.",
            names,
        )
    return [suite]
