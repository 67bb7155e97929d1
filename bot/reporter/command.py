"""`aac report`: detect the CI context, upload result files, complete the cycle, maybe wait."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.reporter.client import (
    ApiRejected,
    CyclesClient,
    Rejection,
    ServerUnavailable,
    display_url,
    server_url_problem,
)
from bot.reporter.console import Console
from bot.reporter.context import (
    ContextOverrides,
    DetectedContext,
    MissingContextError,
    detect_ci_context,
    idempotency_key,
    resolve_context,
    upload_key,
)
from bot.reporter.files import ResultFile, expand_globs, gzip_body, human_size
from bot.reporter.retry import RetryPolicy
from bot.reporter.summary import (
    awaits_publication,
    format_counts,
    format_summary,
    has_failures,
    is_final,
    is_infra_error,
    is_timed_out,
    publication_note,
    totals,
)
from providers.context import CiContext

EXIT_OK = 0
EXIT_TEST_FAILURES = 1
EXIT_USAGE = 2
EXIT_NOT_REPORTED = 3  # only with --strict: server down, or --wait timed out

DEFAULT_API_KEY_ENV = "AAC_API_KEY"
SERVER_ENV = "AAC_SERVER_URL"
# Rejections about one file: report it, keep uploading the others.
PER_FILE_STATUSES = frozenset({400, 413, 415, 422})

EPILOG = """\
exit codes: 0 reported (or server unreachable without --strict), 1 tests failed or errored
(--fail-on-failures), 2 bad usage or the server refused the request/a file, 3 not reported
because the server was unreachable or --wait timed out (--strict only)."""


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `aac report`'s arguments to `parser`."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "patterns",
        nargs="*",
        metavar="GLOB",
        help="result files to upload, e.g. 'reports/**/*.xml' (quote it; ** is recursive)",
    )
    parser.add_argument("--server", help=f"aac-bot base URL (default: ${SERVER_ENV})")
    parser.add_argument(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        metavar="NAME",
        help=f"environment variable holding the API key (default: {DEFAULT_API_KEY_ENV})",
    )

    ctx = parser.add_argument_group("CI context (detected from the runner; flags override)")
    ctx.add_argument("--source", help="github, gitlab, azure, or a runner name (not published)")
    ctx.add_argument("--repository", help="owner/name (GitLab: group/sub/name)")
    ctx.add_argument("--pr", type=int, metavar="N", help="PR/MR number")
    ctx.add_argument("--sha", help="commit the results belong to (the PR head)")
    ctx.add_argument("--ref", help="branch or tag name")
    ctx.add_argument("--base-ref", help="the PR/MR target branch")
    ctx.add_argument("--pipeline-id")
    ctx.add_argument("--pipeline-url")
    ctx.add_argument("--run-attempt", type=int, metavar="N")
    ctx.add_argument("--suite", help='name of this set of results (default: "tests")')
    ctx.add_argument("--trigger", help='what started the cycle (default: "ci")')

    run = parser.add_argument_group("behaviour")
    run.add_argument("--allow-empty", action="store_true", help="report even when no file matches")
    run.add_argument(
        "--complete-anyway",
        action="store_true",
        help="complete the cycle even when the server accepted none of the files "
        '(it then reads "No test results reported")',
    )
    # The server's outcomes (bot/cycles.py OUTCOMES); this client is installed without it.
    run.add_argument(
        "--outcome",
        choices=("success", "failure", "cancelled", "timed_out"),
        help="how the test step ended; timed_out when CI killed it at its time limit "
        "(reported as a timeout, with the results uploaded before it)",
    )
    run.add_argument(
        "--timed-out-after",
        type=int,
        metavar="SECONDS",
        help="the time limit the test step hit (implies --outcome timed_out)",
    )
    run.add_argument("--exit-code", type=int, metavar="N", help="the test command's exit code")
    run.add_argument("--wait", action="store_true", help="wait for the analysis and print it")
    run.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="--wait limit (600)"
    )
    run.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS")
    run.add_argument(
        "--fail-on-failures",
        action="store_true",
        help="exit 1 when tests failed or errored, or on an infrastructure error (implies --wait)",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 3) when the results could not be reported instead of warning",
    )
    run.add_argument("--max-attempts", type=int, default=6, metavar="N", help="per request (6)")


def _overrides(args: argparse.Namespace) -> ContextOverrides:
    return ContextOverrides(
        **{f.name: getattr(args, f.name, None) for f in dataclasses.fields(ContextOverrides)}
    )


def _read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def _read_for_upload(path: Path) -> tuple[bytes, bytes]:
    """(the file's bytes, its gzip body)."""
    data = path.read_bytes()
    return data, gzip_body(data)


def _describe_context(context: CiContext, detected: DetectedContext) -> str:
    where = f" (PR #{context.pr})" if context.pr is not None else ""
    origin = "" if detected.runner == "none" else f", {detected.runner}"
    pipeline = f" pipeline {context.pipeline_id}" if context.pipeline_id else ""
    return (
        f'reporting suite "{context.suite}" for {context.repository}@{context.sha[:12]}{where}'
        f" [{context.source}{origin}{pipeline}]"
    )


async def run_report(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    policy: RetryPolicy | None = None,
    cwd: Path | None = None,
) -> int:
    """Run `aac report`; returns the exit code. `policy` and `cwd` exist for tests."""
    console = Console(out, err)
    if args.timed_out_after is not None:
        if args.outcome not in (None, "timed_out") or args.timed_out_after < 1:
            console.error(
                f"--timed-out-after {args.timed_out_after} needs a positive number of seconds "
                f"and --outcome timed_out (or no --outcome), not --outcome {args.outcome}."
            )
            return EXIT_USAGE
        args.outcome = "timed_out"
    key_env = args.api_key_env
    api_key = environ.get(key_env, "").strip()
    if api_key:
        console.hide(api_key)

    server = (args.server or environ.get(SERVER_ENV, "")).strip()
    problem = server_url_problem(server) if server else None
    if problem is not None:
        # A configuration error: said at once, before anything else is looked at or sent.
        origin = "--server" if args.server else SERVER_ENV
        console.error(
            f"{origin} {display_url(server)!r} is not a URL aac report can use: {problem}."
        )
        return EXIT_USAGE

    detected = detect_ci_context(environ, read_file=_read_bytes)
    for note in detected.notes:
        console.warn(note)
    try:
        context = resolve_context(detected, _overrides(args))
    except MissingContextError as exc:
        console.error(f"cannot tell where these results belong: {exc}.")
        return EXIT_USAGE

    files = expand_globs(args.patterns, cwd or Path.cwd())
    if not files and not args.allow_empty:
        given = " ".join(repr(p) for p in args.patterns) or "(no GLOB given)"
        console.error(
            f"no result files match {given} in {cwd or Path.cwd()}. Check the test step wrote "
            "its reports there, or pass --allow-empty to report a cycle without results."
        )
        return EXIT_USAGE

    if not server:
        console.error(f"no server: pass --server URL or set {SERVER_ENV} to the aac-bot URL.")
        return EXIT_USAGE
    if not api_key:
        console.error(
            f"no API key: the environment variable {key_env} is unset or empty. Store a key "
            "(`aac apikey create --org ORG`) in your CI secret store and expose it to this "
            f"step as {key_env}, or name another variable with --api-key-env."
        )
        return EXIT_USAGE

    console.info(_describe_context(context, detected))
    policy = dataclasses.replace(policy or RetryPolicy(), max_attempts=max(1, args.max_attempts))
    try:
        async with CyclesClient(server, api_key, policy=policy) as client:
            return await _report(args, client, console, context, detected, files, policy)
    except ServerUnavailable as exc:
        where = display_url(server)
        if args.strict:
            console.error(
                f"results were NOT reported to {where}: {exc}. Failing the job because of --strict."
            )
            return EXIT_NOT_REPORTED
        console.warn(
            f"results were NOT reported to {where}: {exc}. The job goes on; "
            "check the server, or pass --strict to fail the job when this happens."
        )
        return EXIT_OK
    except ApiRejected as exc:
        console.error(_rejection_message(exc.rejection, key_env, context))
        return EXIT_USAGE


def _rejection_message(rejection: Rejection, key_env: str, context: CiContext) -> str:
    reason = rejection.describe()
    if rejection.status == 401:
        return (
            f"the server refused the API key from ${key_env}: {reason}. Check the CI secret "
            "holds a current key (`aac apikey create --org ORG` makes one)."
        )
    if rejection.status == 403:
        return (
            f"the API key from ${key_env} may not report for {context.repository}: {reason}. "
            "Use a key of the organisation that owns this repository."
        )
    if rejection.status == 409:
        return (
            f"{reason}. This job already reported suite {context.suite!r} and completed it; "
            "give each `aac report` of one job its own --suite."
        )
    if rejection.status == 404:
        return (
            f"not found: {reason}. Check --server is the aac-bot base URL "
            "(it serves /api/v1/cycles)."
        )
    return f"the server refused the request: {reason}."


def _file_rejection_message(name: str, rejection: Rejection) -> str:
    reason = rejection.describe()
    if rejection.status == 413:
        return f"{name} is too large for the server: {reason}. Split the report or skip it."
    return f"the server could not take {name}: {reason}. Check it is a test report it reads."


async def _report(
    args: argparse.Namespace,
    client: CyclesClient,
    console: Console,
    context: CiContext,
    detected: DetectedContext,
    files: Sequence[ResultFile],
    policy: RetryPolicy,
) -> int:
    body = context.to_json()
    body.pop("extra", None)
    cycle_key = idempotency_key(context, detected.job_id)
    cycle = await client.create_cycle(body, cycle_key)
    cycle_id = str(cycle.get("id"))
    upload_url = str(cycle.get("upload_url") or f"api/v1/cycles/{cycle_id}/results")
    complete_url = str(cycle.get("complete_url") or f"api/v1/cycles/{cycle_id}/complete")
    report_url = cycle.get("report_url")
    console.info(f"cycle {cycle_id}: {report_url}" if report_url else f"cycle {cycle_id}")

    refused = 0
    last: dict[str, Any] | None = None
    for index, file in enumerate(files, start=1):
        console.info(f"uploading {index}/{len(files)} {file.name} ({human_size(file.size)})")
        try:
            data, payload = await asyncio.to_thread(_read_for_upload, file.path)
        except OSError as exc:
            console.error(f"cannot read {file.name}: {exc.strerror or type(exc).__name__}.")
            refused += 1
            continue
        try:
            key = upload_key(cycle_key, file.name, data)
            last = await client.upload(upload_url, file.name, payload, key)
        except ApiRejected as exc:
            if exc.rejection.status not in PER_FILE_STATUSES:
                raise
            console.error(_file_rejection_message(file.name, exc.rejection))
            refused += 1
            continue
        for entry in last.get("files") or []:
            if isinstance(entry, dict) and entry.get("tests") == 0:
                console.warn(f"{file.name}: the server found no test cases in it.")
    if last is not None and isinstance(last.get("totals"), dict):
        console.info(f"uploaded {len(files) - refused} file(s): {format_counts(totals(last))}")

    if files and refused == len(files) and not args.complete_anyway:
        # Completing would publish "No test results reported" over a run whose results exist.
        console.error(
            f"none of the {len(files)} file(s) was accepted (see above), so cycle {cycle_id} "
            "was left open rather than completed without results. Fix the files and run "
            "again, or pass --complete-anyway to complete it as it is."
        )
        return EXIT_USAGE
    cycle = await client.complete(
        complete_url, args.outcome, args.exit_code, timeout_seconds=args.timed_out_after
    )
    code = EXIT_USAGE if refused else EXIT_OK
    if refused:
        console.error(f"{refused} of {len(files)} file(s) were not accepted (see above).")
    if not (args.wait or args.fail_on_failures):
        console.info("results reported; the analysis continues on the server.")
        return code

    final = await _wait(client, cycle_id, cycle, args, policy)
    if is_final(final) and awaits_publication(final):
        # Analysed, but the publish job has not recorded anything within --timeout.
        final = {
            **final,
            "published": {
                "status": {
                    "kind": "publication",
                    "succeeded": False,
                    "reason": f"not recorded within {args.timeout:g}s (the publish job is "
                    "queued or retrying; `aac jobs list` on the server shows it)",
                }
            },
        }
    if not is_final(final):
        message = (
            f"cycle {cycle_id} was not finished after {args.timeout:g}s; the results are "
            "reported and the analysis goes on: see the report page."
        )
        if args.strict:
            console.error(message + " Failing the job because of --strict.")
            return max(code, EXIT_NOT_REPORTED)
        console.warn(message)
        return code
    for line in format_summary(final):
        console.info(line)
    note = publication_note(final)
    if note is not None:
        console.warn(note + ".")
    if code == EXIT_OK and args.fail_on_failures and has_failures(final):
        console.error(
            "the test run hit an infrastructure error"
            if is_infra_error(final)
            else "the test run timed out"
            if is_timed_out(final)
            else "tests failed or errored"
        )
        return EXIT_TEST_FAILURES
    return code


async def _wait(
    client: CyclesClient,
    cycle_id: str,
    cycle: dict[str, Any],
    args: argparse.Namespace,
    policy: RetryPolicy,
) -> dict[str, Any]:
    """Poll until the cycle's status is final and, for an SCM, its publication is recorded,
    or --timeout passes; the cycle as last read."""
    deadline = policy.clock() + args.timeout
    while not is_final(cycle) or awaits_publication(cycle):
        remaining = deadline - policy.clock()
        if remaining <= 0:
            return cycle
        await policy.sleep(min(max(args.poll_interval, 0.0), remaining))
        cycle = await client.get_cycle(cycle_id)
    return cycle


def build_parser() -> argparse.ArgumentParser:
    """A standalone parser for `aac report` (the `aac` CLI builds its own subparser)."""
    parser = argparse.ArgumentParser(
        prog="aac report", description="Upload test results to aac-bot from a CI job."
    )
    add_report_arguments(parser)
    return parser


def main(argv: Sequence[str], *, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """Parse `argv` and run the report on a fresh event loop; the exit code."""
    args = build_parser().parse_args(list(argv))
    return asyncio.run(run_report(args, environ=environ, out=out, err=err))
