from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.analysis.redact import REDACTED, Redactor

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "f6G7h8"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (text, the secret part that must disappear, the label expected in its place)
SHAPES = [
    (f"push with {GITHUB_TOKEN} failed", GITHUB_TOKEN, "github-token"),
    ("gho_" + "x" * 36, "gho_" + "x" * 36, "github-token"),
    ("ghs_" + "Y" * 40 + " done", "ghs_" + "Y" * 40, "github-token"),
    (
        "token github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEF",
        "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEF",
        "github-token",
    ),
    ("PRIVATE-TOKEN: glpat-abcdefghij1234567890", "glpat-abcdefghij1234567890", "gitlab-token"),
    ("deploy gldt-AbCdEfGhIjKlMnOpQrStUv ok", "gldt-AbCdEfGhIjKlMnOpQrStUv", "gitlab-token"),
    ("runner glrt-0123456789abcdefghijKL", "glrt-0123456789abcdefghijKL", "gitlab-token"),
    ("key id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"),
    ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A", "aws-access-key-id"),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws-secret-key"),
    (f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET, "aws-secret-key"),
    (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, "aws-secret-key"),
    (f"cookie session={JWT}; path=/", JWT, "jwt"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nq1w2e3r4\n"
        "-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7",
        "private-key",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "private-key",
    ),
    (
        "git clone https://x-access-token:s3cr3tValue@github.com/o/r.git",
        "s3cr3tValue",
        "url-credentials",
    ),
    ("postgres://aac:hunter22@db:5432/aac", "hunter22", "url-credentials"),
    ("DB_PASSWORD=hunter22 ./run", "hunter22", "credential-assignment"),
    ("export API_KEY='abc123xyz'", "abc123xyz", "credential-assignment"),
    ('{"password": "hunter22", "user": "bob"}', "hunter22", "credential-assignment"),
    ("{'client_secret': 'abc123xyz'}", "abc123xyz", "credential-assignment"),
    ("GET /cb?code=1&access_token=abc123xyz&x=1", "abc123xyz", "credential-assignment"),
    ("connect(user='u', password=\"hunter22\")", "hunter22", "credential-assignment"),
    ("db_password: hunter22", "hunter22", "credential-assignment"),
    ("X-Api-Key: abcdef123456", "abcdef123456", "credential-assignment"),
    ("https://acct.blob.core.windows.net/c?sv=2022&sig=AbC%2Bdef123", "AbC%2Bdef123", "credential"),
    ("slack xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxb-1234567890-0987654321", "slack-token"),
    (
        "post https://hooks.slack.com/services/T000/B000/XXXXXXXX",
        "T000/B000/XXXXXXXX",
        "slack-webhook",
    ),
    ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123", "authorization"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "authorization"),
    ("curl -H 'Authorization: token 0123456789abcdef'", "0123456789abcdef", "authorization"),
    ("sent bearer eyJ0eXAiOiJKV1Qi0123456", "eyJ0eXAiOiJKV1Qi0123456", "bearer-token"),
    ("OPENAI_KEY sk-proj-abcdefghijklmnopqrstu12345", "sk-proj-abcdefghijklmnopqrstu12345", "key"),
    ("npm_" + "a1" * 18, "npm_" + "a1" * 18, "npm-token"),
]


@pytest.mark.parametrize(("text", "secret", "label"), SHAPES)
def test_each_credential_shape_is_redacted(text: str, secret: str, label: str) -> None:
    out = Redactor().redact(text)
    assert secret not in out
    assert "[REDACTED:" in out
    assert label in out


def test_private_key_cut_off_by_a_log_tail_is_redacted_to_the_end() -> None:
    text = "before\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk\nabcdef"
    out = Redactor().redact(text)
    assert out == "before\n[REDACTED:private-key]"


def test_assignment_keeps_key_and_rest_of_line() -> None:
    out = Redactor().redact("DB_PASSWORD=hunter22 DB_HOST=db.local PORT=5432")
    assert out == "DB_PASSWORD=[REDACTED:credential-assignment] DB_HOST=db.local PORT=5432"


def test_url_credentials_keep_user_and_host() -> None:
    out = Redactor(labelled=False).redact("https://deploy:pa55w0rd@git.example.com/repo")
    assert out == "https://deploy:[REDACTED]@git.example.com/repo"


@pytest.mark.parametrize(
    "text",
    [
        "Invalid token: expected 3 parts, got 2",
        "signal=9 mytokens=3 tokens=4",
        "if token == expected_token:",
        "commit 9fceb02d0ae598e95dc970b74dd74f8ff9a1b2c3 on main",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "AssertionError: assert 'ghp_short' == 'x'",
        "the password field is required",
        "see https://github.com/org/repo/pull/12",
        "PWD=/home/runner/work",
    ],
)
def test_ordinary_log_text_is_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_organisation_secrets_are_redacted_including_url_encoded_form() -> None:
    secret = "p@ss/w0rd!42"
    redactor = Redactor([secret, "whsec-0123456789", "ab"])
    text = f"pass={secret!r} in url https://h/?p=p%40ss%2Fw0rd%2142 hook whsec-0123456789 ab"
    out = redactor.redact(text)
    assert secret not in out
    assert "p%40ss%2Fw0rd%2142" not in out
    assert "whsec-0123456789" not in out
    assert out.endswith(" ab")  # too short to be a secret: would shred ordinary words


def test_longer_secret_containing_a_shorter_one_is_replaced_whole() -> None:
    out = Redactor(["abcdef", "abcdef-ghijkl"]).redact("x abcdef-ghijkl y")
    assert out == f"x {REDACTED} y"


def test_with_secrets_adds_values_and_keeps_options() -> None:
    base = Redactor(["first-secret"], labelled=False)
    both = base.with_secrets(["second-secret", "no"])
    out = both.redact(f"first-secret second-secret no {GITHUB_TOKEN}")
    assert out == f"{REDACTED} {REDACTED} no {REDACTED}"


def test_repr_never_shows_values() -> None:
    assert "hunter22" not in repr(Redactor(["hunter22"]))


_token_body = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


@settings(max_examples=150, deadline=None)
@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    body=_token_body.filter(lambda s: len(s) >= 36).map(lambda s: s[:40]),
    prefix=st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
)
def test_github_tokens_never_survive_in_any_context(
    before: str, after: str, body: str, prefix: str
) -> None:
    token = prefix + body
    out = Redactor().redact(f"{before} {token} {after}")
    assert token not in out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from([row[0] for row in SHAPES]),
            st.sampled_from(["password=", "token: ", "Bearer ", "://u:p@", "-----BEGIN "]),
        ),
        max_size=6,
    )
)
def test_redacting_twice_changes_nothing(parts: list[str]) -> None:
    redactor = Redactor(["org-secret-1"])
    once = redactor.redact("".join(parts))
    assert redactor.redact(once) == once


def test_fast_on_megabytes_of_logs() -> None:
    line = (
        "2024-05-01T12:00:00Z INFO [worker-3] GET /api/v1/items/42 took 12ms status=200 "
        "user=alice request_id=9f2c token refresh scheduled\n"
    )
    log = line * 20_000 + f"ERROR auth failed with {GITHUB_TOKEN}\n"  # ~2.6 MB
    redactor = Redactor(["org-secret-value-1", "org-secret-value-2"])
    started = time.perf_counter()
    out = redactor.redact(log)
    elapsed = time.perf_counter() - started
    assert GITHUB_TOKEN not in out
    # Measured ~0.4 s on a shared 2-core runner; generous bound against noise.
    assert elapsed < 3.0


def test_a_multi_line_secret_is_redacted_json_escaped_and_line_by_line() -> None:
    body = ["A" * 64, "B" * 64, "C" * 20]
    pem = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *body, "-----END RSA PRIVATE KEY-----"])
    redactor = Redactor([pem])
    escaped = pem.replace("\n", "\\n")
    out = redactor.redact(f'{{"key": "{escaped}"}} then a line {body[1]} alone')
    assert all(line not in out for line in body)
