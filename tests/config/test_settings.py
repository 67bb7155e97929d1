from __future__ import annotations

import pytest

from config.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings, misspelt_variables
from storage.keyring_source import load_keys


def test_defaults_are_the_embedded_sqlite() -> None:
    settings = load_settings({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert str(settings.sqlite_path) == "aac.db"
    assert settings.public_url == "http://127.0.0.1:8000"


def test_values_are_parsed_and_typed() -> None:
    settings = load_settings(
        {
            "AAC_DATABASE_URL": "postgresql://aac@db:5432/aac",
            "AAC_PUBLIC_URL": "https://aac.example.com/",
            "AAC_LOG_LEVEL": "debug",
            "AAC_LLM_FALLBACK_MODELS": "gpt-4o-mini, claude-3-haiku",
            "AAC_PORT": "9000",
            "UNRELATED": "x",
        }
    )
    assert settings.database_url == "postgresql+asyncpg://aac@db:5432/aac"
    assert settings.public_url == "https://aac.example.com"
    assert settings.log_level == "DEBUG"
    assert settings.llm_fallback_models == ("gpt-4o-mini", "claude-3-haiku")
    assert settings.port == 9000


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"AAC_PORT": "eighty"}, "AAC_PORT"),
        ({"AAC_PORT": "70000"}, "AAC_PORT"),
        ({"AAC_DATABASE_URL": "mysql://x"}, "AAC_DATABASE_URL"),
        ({"AAC_PUBLIC_URL": "aac.example.com"}, "AAC_PUBLIC_URL"),
        ({"AAC_LOG_LEVEL": "loud"}, "AAC_LOG_LEVEL"),
        ({"AAC_LLM_TIMEOUT": "-1"}, "AAC_LLM_TIMEOUT"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(names + ":")
    assert "\n" not in message


def test_secret_values_are_not_echoed_in_errors_or_repr() -> None:
    settings = load_settings({"AAC_SECRET_KEYS": "k1:c2VjcmV0", "AAC_LLM_API_KEY": "sk-live-123"})
    assert "sk-live-123" not in repr(settings)
    assert "c2VjcmV0" not in repr(settings)
    with pytest.raises(SettingsError) as info:
        load_keys(settings)
    assert "c2VjcmV0" not in str(info.value)
    assert str(info.value).startswith("AAC_SECRET_KEYS:")


def test_postgresql_without_keys_refuses_to_start() -> None:
    settings = load_settings({"AAC_DATABASE_URL": "postgresql+asyncpg://x@h/db"})
    with pytest.raises(SettingsError, match="AAC_SECRET_KEYS: required"):
        load_keys(settings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("true", True), ("1", True), ("false", False), ("0", False), ("no", False)],
)
def test_github_auto_link_is_an_opt_in_boolean(raw: str | None, expected: bool) -> None:
    environ = {} if raw is None else {"AAC_GITHUB_AUTO_LINK": raw}
    assert load_settings(environ).github_auto_link is expected


def test_github_auto_link_names_itself_when_malformed() -> None:
    with pytest.raises(SettingsError, match=r"^AAC_GITHUB_AUTO_LINK:"):
        load_settings({"AAC_GITHUB_AUTO_LINK": "sometimes"})


def test_a_misspelt_variable_is_named_with_the_setting_it_resembles() -> None:
    env = {
        "AAC_DATABSE_URL": "postgresql+asyncpg://db/aac",  # the typo
        "AAC_WORKER_CONCURENCY": "4",
        "AAC_DATABASE_URL": "sqlite+aiosqlite:///./x.db",
        "AAC_API_KEY": "used by aac report",
        "AAC_SERVE_NO_WORKER": "1",
        "AAC_SOMETHING_ELSE": "unrelated",
        "DATABSE_URL": "not ours",
    }
    assert misspelt_variables(env) == [
        "AAC_DATABSE_URL is not a setting and is ignored; did you mean AAC_DATABASE_URL?",
        "AAC_WORKER_CONCURENCY is not a setting and is ignored; did you mean "
        "AAC_WORKER_CONCURRENCY?",
    ]


def test_webhook_redelivery_is_periodic_by_default_and_can_be_turned_off() -> None:
    assert load_settings({}).github_redeliver_interval == 900
    assert load_settings({}).github_redeliver_window == 8 * 3600
    assert load_settings({"AAC_GITHUB_REDELIVER_INTERVAL": "0"}).github_redeliver_interval == 0
    with pytest.raises(SettingsError, match=r"^AAC_GITHUB_REDELIVER_WINDOW:"):
        load_settings({"AAC_GITHUB_REDELIVER_WINDOW": "10"})
