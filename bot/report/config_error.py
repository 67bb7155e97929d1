"""The completed check run (or commit status) that says why ``.aac.yml`` was rejected.

Without it an invalid file makes the bot silently do nothing on a pull request. The text names
only keys, lines and the parser's complaint, never the offending values, and is redacted and
escaped anyway: the file is written by whoever opened the pull request.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.analysis.redact import Redactor
from bot.report.markdown import (
    clean,
    details,
    escape_inline,
    fence,
    link,
    safe_url,
    truncate_bytes,
)
from config.repo_config import CONFIG_PATH, ConfigProblem, RepoConfigError
from providers.base import GITHUB_LIMITS, CommitStatus, Conclusion, PlatformLimits, StatusState

# Not "aac / <suite>": a suite may be named anything the suite pattern allows, this may not.
CONFIG_CHECK_NAME = "aac-bot: configuration"
TITLE = f"Invalid {CONFIG_PATH}"
MAX_LISTED = 5
MAX_MESSAGE_CHARS = 300
EXAMPLE = """\
version: 1
suites:
  - name: unit                       # letters, digits, '.', '_', '-'
    triggers: [pull_request, pipeline_finished]   # also: manual, ci
    drafts: false
    workflows: [CI]                  # workflow names to ingest; empty = all
    artifacts: ["*test*", "*junit*"] # artifact name globs
    files: ["*.xml", "*.trx"]        # result files inside the artifacts
  - name: integration                # run by the bot's testing nodes instead of CI
    triggers: [pull_request, manual] # manual: `/aac run integration`
    run:
      command: pytest -q --junitxml=out/junit.xml
      env:
        API_TOKEN: {secret: API}     # from the organisation's vault, never inline
      timeout: 900                   # seconds
      results: "out/*.xml"           # result files, relative to the workdir"""


def _where(problem: ConfigProblem, redact: Callable[[str], str]) -> str:
    parts = [f"line {problem.line}"] if problem.line is not None else []
    if problem.key:
        parts.append(redact(problem.key))
    return ", ".join(parts)


def _plain(problem: ConfigProblem, redact: Callable[[str], str]) -> str:
    """One line of plain text for a commit status description."""
    where = _where(problem, redact)
    message = redact(problem.message)
    return " ".join(clean(f"{where}: {message}" if where else message).split())


def _item(problem: ConfigProblem, redact: Callable[[str], str]) -> str:
    where = _where(problem, redact)
    message = escape_inline(redact(problem.message), MAX_MESSAGE_CHARS)
    return f"- **{escape_inline(where, 200)}**: {message}" if where else f"- {message}"


def render_config_error(
    error: RepoConfigError,
    *,
    sha: str,
    file_url: str | None = None,
    redact: Callable[[str], str] | None = None,
    limits: PlatformLimits = GITHUB_LIMITS,
) -> CommitStatus:
    """A failed check for ``sha``: what is wrong with the file, where, and how to fix it.

    ``file_url`` is the file on the platform at ``sha``; it becomes the details link.
    """
    redact = redact or Redactor().redact
    problems = error.problems
    first_line = next((p.line for p in problems if p.line is not None), None)
    target = safe_url(f"{file_url}#L{first_line}" if file_url and first_line else file_url)
    listed = [_item(p, redact) for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        listed.append(f"- … and {len(problems) - MAX_LISTED} more")
    fix = (
        f"**How to fix:** correct {link(CONFIG_PATH, target)} and push a new commit; the file "
        "is read again on every push, and this check is not repeated once it is valid. Deleting "
        "the file also works: the default is one suite, `tests`."
    )
    summary = "\n\n".join(
        [
            f"**`{CONFIG_PATH}` at {sha[:7]} is invalid, so no test suites were started for "
            "this commit.**",
            "\n".join(listed),
            fix,
            details(f"A valid {CONFIG_PATH}", fence(EXAMPLE, "yaml")),
        ]
    )
    # What to do goes first: a commit status keeps only 140 characters.
    description = f"{TITLE} (fix it and push): {_plain(problems[0], redact)}"
    return CommitStatus(
        state=StatusState.COMPLETED,
        name=CONFIG_CHECK_NAME,
        description=truncate_bytes(description, limits.status_description_chars),
        conclusion=Conclusion.FAILURE,
        title=TITLE,
        summary=truncate_bytes(summary, limits.check_summary_bytes or 65_535),
        details_url=target,
    )
