"""`aac report` end to end against a loopback fake of the cycles API."""

from __future__ import annotations

import gzip
import io
import socket
from pathlib import Path
from typing import Any

import pytest
from fake_aac import FakeAac, FakeTime

from bot import cycles
from bot.reporter.command import build_parser, main, run_report
from bot.reporter.retry import RetryPolicy

SHA = "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5"
XML_A = b'<testsuite name="a"><testcase name="t1"/><testcase name="t2"/></testsuite>'
XML_B = b'<testsuite name="b"><testcase name="t3"><failure>boom</failure></testcase></testsuite>'


def runner_env(api_key: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REPOSITORY": "acme-corp/payments-api",
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_SERVER_URL": "https://github.com",
        "AAC_API_KEY": api_key,
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "reports" / "unit").mkdir(parents=True)
    (tmp_path / "reports" / "unit" / "TEST-a.xml").write_bytes(XML_A)
    (tmp_path / "reports" / "TEST-b.xml").write_bytes(XML_B)
    (tmp_path / "reports" / "notes.txt").write_text("not a report")
    return tmp_path


class Run:
    """One `aac report` invocation's outcome."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out + self.err


async def report(
    argv: list[str],
    *,
    env: dict[str, str],
    policy: RetryPolicy,
    cwd: Path,
) -> Run:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(argv)
    code = await run_report(args, environ=env, out=out, err=err, policy=policy, cwd=cwd)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def run(fake_aac: FakeAac, policy: RetryPolicy, workdir: Path) -> Any:
    async def _run(*extra: str, env: dict[str, str] | None = None, server: str = "") -> Run:
        argv = ["--server", server or fake_aac.url, "reports/**/*.xml", *extra]
        result = await report(
            argv, env=env or runner_env(fake_aac.api_key), policy=policy, cwd=workdir
        )
        assert fake_aac.api_key not in result.text
        return result

    return _run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------------------
# The happy path
# ---------------------------------------------------------------------------------------
async def test_full_cycle_uploads_gzip_bodies_and_completes(run: Any, fake_aac: FakeAac) -> None:
    result = await run("--outcome", "failure", "--exit-code", "1")

    assert result.code == 0, result.err
    [create] = fake_aac.of("create")
    assert create.json() == {
        "source": "github",
        "repository": "acme-corp/payments-api",
        "sha": SHA,
        "pr": None,
        "ref": "main",
        "base_ref": None,
        "pipeline_id": "42",
        "pipeline_url": "https://github.com/acme-corp/payments-api/actions/runs/42",
        "run_attempt": 1,
        "suite": "tests",
        "trigger": "ci",
    }
    assert create.headers["idempotency-key"].startswith("aac-report-")
    assert create.headers["authorization"] == f"Bearer {fake_aac.api_key}"

    uploads = fake_aac.of("upload")
    assert [u.headers["x-filename"] for u in uploads] == [
        "reports/TEST-b.xml",
        "reports/unit/TEST-a.xml",
    ]
    for upload in uploads:
        assert upload.headers["content-encoding"] == "gzip"
        assert upload.headers["content-type"] == "application/octet-stream"
        assert upload.body[:2] == b"\x1f\x8b"
    assert [gzip.decompress(u.body) for u in uploads] == [XML_B, XML_A]

    [complete] = fake_aac.of("complete")
    assert complete.json() == {"outcome": "failure", "exit_code": 1}
    assert "uploading 1/2 reports/TEST-b.xml (" in result.out
    assert "uploading 2/2 reports/unit/TEST-a.xml (" in result.out
    assert "uploaded 2 file(s): 3 tests" in result.out
    assert f"{fake_aac.url}/cycles/1" in result.out
    assert fake_aac.of("get") == []  # no --wait


async def test_running_twice_sends_the_same_idempotency_key(run: Any, fake_aac: FakeAac) -> None:
    await run()
    await run()

    first, second = fake_aac.of("create")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert len(fake_aac.cycles) == 1


async def test_flags_override_the_detected_context(run: Any, fake_aac: FakeAac) -> None:
    await run("--suite", "e2e", "--pr", "9", "--sha", "ABC123", "--source", "gitlab")

    body = fake_aac.of("create")[0].json()
    assert (body["suite"], body["pr"], body["sha"], body["source"]) == (
        "e2e",
        9,
        "abc123",
        "gitlab",
    )


async def test_upload_urls_elsewhere_are_pinned_to_the_server(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.upload_base = "http://attacker.invalid:9"

    result = await run()

    assert result.code == 0, result.err
    assert len(fake_aac.of("upload")) == 2
    assert len(fake_aac.of("complete")) == 1


# ---------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------
async def test_5xx_then_success_is_retried(
    run: Any, fake_aac: FakeAac, fake_time: FakeTime
) -> None:
    fake_aac.force("upload", 503, {"error": "unavailable", "detail": "restarting"}, times=2)

    result = await run()

    assert result.code == 0, result.err
    assert len(fake_aac.of("upload")) == 4  # 2 refused + 2 accepted
    assert [name for name, _ in fake_aac.stored] == [
        "reports/TEST-b.xml",
        "reports/unit/TEST-a.xml",
    ]
    # Equal jitter with rng=0.5: 3/4 of 1 s, then 3/4 of 2 s.
    assert fake_time.sleeps == [0.75, 1.5]


async def test_429_retry_after_is_honoured(
    run: Any, fake_aac: FakeAac, fake_time: FakeTime
) -> None:
    fake_aac.force(
        "create", 429, {"error": "rate_limited", "detail": "slow down"}, {"Retry-After": "7"}
    )

    result = await run()

    assert result.code == 0, result.err
    assert fake_time.sleeps == [7.0]
    assert len(fake_aac.of("create")) == 2


async def test_persistent_5xx_gives_up_after_max_attempts_without_failing_the_job(
    run: Any, fake_aac: FakeAac, fake_time: FakeTime
) -> None:
    fake_aac.force("create", 502, b"<html>Bad Gateway</html>", times=10)

    result = await run("--max-attempts", "3")

    assert result.code == 0
    assert len(fake_aac.of("create")) == 3
    assert len(fake_time.sleeps) == 2
    assert "NOT reported" in result.err
    assert "HTTP 502" in result.err
    assert "3 attempts" in result.err


async def test_server_down_warns_and_exits_0(run: Any, fake_time: FakeTime) -> None:
    result = await run("--max-attempts", "2", server=f"http://127.0.0.1:{free_port()}")

    assert result.code == 0
    assert "aac: warning: results were NOT reported" in result.err
    assert "ConnectError" in result.err
    assert "--strict" in result.err
    assert len(fake_time.sleeps) == 1


async def test_server_down_with_strict_fails(run: Any) -> None:
    result = await run("--strict", "--max-attempts", "1", server=f"http://127.0.0.1:{free_port()}")

    assert result.code == 3
    assert "aac: error: results were NOT reported" in result.err


async def test_a_non_json_answer_counts_as_the_server_being_unavailable(
    run: Any, fake_aac: FakeAac
) -> None:
    fake_aac.force("create", 200, b"<html>login page</html>", {"Content-Type": "text/html"})

    result = await run()

    assert result.code == 0
    assert "is --server the aac-bot URL?" in result.err


# ---------------------------------------------------------------------------------------
# The user's fault: exit 2 with the server's reason
# ---------------------------------------------------------------------------------------
async def test_401_exits_2_with_the_reason_and_uploads_nothing(run: Any, fake_aac: FakeAac) -> None:
    env = runner_env("wrong-key-value")

    result = await run(env=env)

    assert result.code == 2
    assert "unknown API key (unauthorized, HTTP 401)" in result.err
    assert "$AAC_API_KEY" in result.err
    assert "wrong-key-value" not in result.text
    assert fake_aac.of("upload") == []


async def test_a_key_echoed_by_the_server_is_masked(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.force("create", 403, {"error": "forbidden", "detail": f"key {fake_aac.api_key} no"})

    result = await run()

    assert result.code == 2
    assert "key *** no" in result.err


async def test_409_on_a_closed_cycle_suggests_a_distinct_suite(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.force("upload", 409, {"error": "cycle_closed", "detail": "cycle 1 is done"})

    result = await run()

    assert result.code == 2
    assert "cycle 1 is done (cycle_closed, HTTP 409)" in result.err
    assert "its own --suite" in result.err
    assert len(fake_aac.of("upload")) == 1  # not a per-file problem: stop


async def test_404_points_at_the_server_url(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.force("create", 404, {"error": "not_found", "detail": "no such route"})

    result = await run()

    assert result.code == 2
    assert "Check --server" in result.err


async def test_422_on_one_file_reports_the_others_and_exits_2(
    run: Any, fake_aac: FakeAac, workdir: Path
) -> None:
    (workdir / "reports" / "broken.xml").write_bytes(b"garbage")

    result = await run()

    assert result.code == 2
    assert (
        "the server could not take reports/broken.xml: not well-formed XML "
        "(invalid_file, HTTP 422) at reports/broken.xml:1:1"
    ) in result.err
    assert len(fake_aac.stored) == 2
    assert len(fake_aac.of("complete")) == 1


async def test_missing_api_key_is_a_clear_error(run: Any, fake_aac: FakeAac) -> None:
    env = runner_env("")

    result = await run("--api-key-env", "CI_AAC_TOKEN", env=env)

    assert result.code == 2
    assert "CI_AAC_TOKEN is unset or empty" in result.err
    assert fake_aac.requests == []


async def test_missing_context_names_the_flags(run: Any, fake_aac: FakeAac) -> None:
    result = await run(env={"AAC_API_KEY": fake_aac.api_key})

    assert result.code == 2
    assert "missing --repository, --sha (no CI runner was detected)" in result.err
    assert fake_aac.requests == []


async def test_no_matching_files_exits_2(run: Any, fake_aac: FakeAac, workdir: Path) -> None:
    for path in workdir.rglob("*.xml"):
        path.unlink()

    result = await run()

    assert result.code == 2
    assert "no result files match 'reports/**/*.xml'" in result.err
    assert "--allow-empty" in result.err
    assert fake_aac.requests == []


async def test_allow_empty_reports_a_cycle_without_files(
    run: Any, fake_aac: FakeAac, workdir: Path
) -> None:
    for path in workdir.rglob("*.xml"):
        path.unlink()

    result = await run("--allow-empty", "--outcome", "failure")

    assert result.code == 0, result.err
    assert fake_aac.of("upload") == []
    assert fake_aac.of("complete")[0].json() == {"outcome": "failure", "exit_code": None}


# ---------------------------------------------------------------------------------------
# --wait and --fail-on-failures
# ---------------------------------------------------------------------------------------
async def test_wait_polls_until_final_and_prints_the_summary(
    run: Any, fake_aac: FakeAac, fake_time: FakeTime
) -> None:
    fake_aac.poll_statuses.extend(["collecting", "analysing", "analysing"])

    result = await run("--wait", "--poll-interval", "2")

    assert result.code == 0, result.err
    assert len(fake_aac.of("get")) == 3
    assert fake_time.sleeps == [2, 2, 2]
    assert "cycle 1 done: 3 tests: 3 passed, 0 failed, 0 errored, 0 skipped, 0 flaky" in result.out
    assert f"report: {fake_aac.url}/cycles/1" in result.out
    assert "All green." in result.out


@pytest.mark.parametrize(
    ("status", "failed", "flags", "code"),
    [
        ("done", 2, ["--fail-on-failures"], 1),
        ("done", 2, ["--wait"], 0),
        ("done", 0, ["--fail-on-failures"], 0),
        ("infra_error", 0, ["--fail-on-failures"], 1),
        ("superseded", 0, ["--fail-on-failures"], 0),
    ],
)
async def test_fail_on_failures_exit_codes(
    run: Any, fake_aac: FakeAac, status: str, failed: int, flags: list[str], code: int
) -> None:
    fake_aac.final_status = status
    fake_aac.final_totals = {**fake_aac.final_totals, "failed": failed}

    result = await run(*flags)

    assert result.code == code, result.text
    assert f"cycle 1 {status}:" in result.out


async def test_server_flag_for_an_infrastructure_error_fails_the_gate(
    run: Any, fake_aac: FakeAac, workdir: Path
) -> None:
    for path in workdir.rglob("*.xml"):
        path.unlink()
    fake_aac.final_totals = dict.fromkeys(fake_aac.final_totals, 0)
    original = fake_aac._cycle
    fake_aac._cycle = lambda cycle_id: {**original(cycle_id), "infrastructure_error": True}  # type: ignore[method-assign]

    result = await run("--allow-empty", "--outcome", "failure", "--fail-on-failures")

    assert result.code == 1
    assert "infrastructure error" in result.err


async def test_wait_timeout_warns_and_exits_0(
    run: Any, fake_aac: FakeAac, fake_time: FakeTime
) -> None:
    fake_aac.final_status = "analysing"

    result = await run("--fail-on-failures", "--timeout", "30", "--poll-interval", "10")

    assert result.code == 0
    assert "was not finished after 30s" in result.err
    assert sum(fake_time.sleeps) == 30


async def test_wait_timeout_with_strict_exits_3(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.final_status = "analysing"

    result = await run("--wait", "--strict", "--timeout", "5")

    assert result.code == 3


# ---------------------------------------------------------------------------------------
# The synchronous entry point
# ---------------------------------------------------------------------------------------
def test_main_runs_on_its_own_loop(fake_aac: FakeAac, workdir: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(workdir)
    out, err = io.StringIO(), io.StringIO()

    code = main(
        ["--server", fake_aac.url, "reports/unit/*.xml"],
        environ=runner_env(fake_aac.api_key),
        out=out,
        err=err,
    )

    assert code == 0, err.getvalue()
    assert [name for name, _ in fake_aac.stored] == ["reports/unit/TEST-a.xml"]
    assert fake_aac.api_key not in out.getvalue() + err.getvalue()


@pytest.mark.parametrize("server", ["127.0.0.1:8000", "ftp://aac.example.com", "http://"])
async def test_a_server_without_a_usable_scheme_exits_2_at_once(
    run: Any, fake_aac: FakeAac, fake_time: FakeTime, server: str
) -> None:
    result = await run(server=server)

    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert f"--server {server!r} is not a URL aac report can use" in line
    assert fake_aac.requests == []
    assert fake_time.sleeps == []


async def test_uploads_carry_a_key_per_file_that_a_retry_repeats(
    run: Any, fake_aac: FakeAac
) -> None:
    fake_aac.force("upload", 503, {"error": "unavailable", "detail": "try again"})

    result = await run()

    assert result.code == 0, result.err
    keys = [r.headers.get("idempotency-key") for r in fake_aac.of("upload")]
    assert len(keys) == 3  # one retried, then each file once
    assert all(k and k.startswith("aac-upload-") for k in keys)
    assert keys[0] == keys[1]  # the retry is the same upload
    assert keys[1] != keys[2]  # another file is another upload
    await run()
    assert [r.headers["idempotency-key"] for r in fake_aac.of("upload")][3:] == keys[1:]


async def test_a_run_whose_every_file_was_refused_leaves_the_cycle_open(
    run: Any, fake_aac: FakeAac, workdir: Path
) -> None:
    for path in (workdir / "reports").rglob("*.xml"):
        path.write_bytes(b"garbage")

    result = await run()

    assert result.code == 2
    assert fake_aac.of("complete") == []
    assert "none of the 2 file(s) was accepted" in result.err
    assert "--complete-anyway" in result.err
    anyway = await run("--complete-anyway")
    assert anyway.code == 2
    assert len(fake_aac.of("complete")) == 1


async def test_wait_waits_for_the_publication_and_says_why_nothing_was_published(
    run: Any, fake_aac: FakeAac
) -> None:
    fake_aac.source = "github"
    fake_aac.published_after = 2
    reason = "no GitHub App installation or token for acme-corp/payments-api"
    fake_aac.published = {
        "status": {"attempted": False, "succeeded": False, "kind": "check_run", "reason": reason}
    }

    result = await run("--wait")

    assert result.code == 0, result.err
    # The completion and the first poll say done without a publication; the second has it.
    assert len(fake_aac.of("get")) == 2
    assert f"nothing was published to github: check_run: {reason}." in result.err


async def test_wait_is_quiet_when_everything_was_published(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.source = "github"
    fake_aac.published = {
        "status": {"attempted": True, "succeeded": True, "kind": "check_run"},
        "comment": {"attempted": True, "succeeded": True, "kind": "comment"},
    }

    result = await run("--wait")

    assert result.code == 0, result.err
    assert "published" not in result.text


async def test_wait_names_a_source_that_is_never_published(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.source = "jenkins"

    result = await run("--wait")

    assert "nothing was published: source 'jenkins' is no SCM the bot publishes to" in result.err


async def test_wait_timeout_before_the_publication_says_so(run: Any, fake_aac: FakeAac) -> None:
    fake_aac.source = "github"
    fake_aac.published_after = 10**6

    result = await run("--wait", "--timeout", "12", "--poll-interval", "5")

    assert result.code == 0
    assert "cycle 1 done" in result.out
    assert "nothing was published to github: publication: not recorded within 12s" in result.err


# ---------------------------------------------------------------------------------------
# A test step that timed out
# ---------------------------------------------------------------------------------------
async def test_timed_out_after_reports_a_timeout_that_fails_the_gate(
    run: Any, fake_aac: FakeAac
) -> None:
    # Every uploaded test passed, but the step was killed: the rest never ran.
    result = await run("--timed-out-after", "900", "--fail-on-failures")

    assert result.code == 1, result.text
    assert fake_aac.of("complete")[0].json() == {
        "outcome": "timed_out",
        "exit_code": None,
        "timeout_seconds": 900,
    }
    assert "timed out after 900 s: killed at its limit" in result.out
    assert "the test run timed out" in result.err


async def test_outcome_timed_out_is_accepted_without_a_limit(run: Any, fake_aac: FakeAac) -> None:
    result = await run("--outcome", "timed_out", "--wait")

    assert result.code == 0, result.text
    assert fake_aac.of("complete")[0].json() == {"outcome": "timed_out", "exit_code": None}
    assert "timed out: killed at its limit" in result.out


async def test_timed_out_after_with_another_outcome_is_refused_before_any_request(
    run: Any, fake_aac: FakeAac
) -> None:
    result = await run("--outcome", "failure", "--timed-out-after", "900")

    assert result.code == 2
    assert "--timed-out-after 900 needs" in result.err
    assert fake_aac.requests == []


def test_the_outcomes_offered_are_the_servers() -> None:
    # The client is installed without bot/cycles.py, so it spells them out; they must agree.
    [outcome] = [a for a in build_parser()._actions if a.dest == "outcome"]
    assert set(outcome.choices or ()) == cycles.OUTCOMES
