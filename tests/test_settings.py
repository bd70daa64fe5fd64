"""Settings precedence and validation; time values and booleans."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.__main__ import main
from service.errors import BadRequest, ParseError
from service.params import INFINITE, parse_bool, parse_time_ms
from service.settings import SettingsError, load_settings


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "esquire.toml"
    # a non-loopback host needs security or an explicit insecure (tests/test_security_process.py)
    config.write_text('port = 9301\nlog_level = "debug"\nhost = "0.0.0.0"\ninsecure = true\n')
    settings = load_settings({"port": 9303}, {"ESQUIRE_PORT": "9302", "ESQUIRE_LOG_LEVEL": "error"}, config)
    assert (settings.port, settings.log_level, settings.host) == (9303, "error", "0.0.0.0")
    assert load_settings({}, {}).port == 9200


def test_boolean_settings_from_env_and_file(tmp_path: Path) -> None:
    assert load_settings({}, {}).query_pushdown is True
    assert load_settings({}, {"ESQUIRE_QUERY_PUSHDOWN": "false"}).query_pushdown is False
    config = tmp_path / "esquire.toml"
    config.write_text("query_pushdown = false\n")
    assert load_settings({}, {}, config).query_pushdown is False


@pytest.mark.parametrize("env,message", [
    ({"ESQUIRE_PORT": "nine"}, "port must be a whole number"),
    ({"ESQUIRE_PORT": "70000"}, "port must be between 0 and 65535"),
    ({"ESQUIRE_LOG_FORMAT": "xml"}, "log_format must be one of json, console"),
    ({"ESQUIRE_QUERY_PUSHDOWN": "maybe"}, "query_pushdown must be true or false"),
])
def test_bad_settings_fail_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({}, env)


def test_cli_reports_bad_settings_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("ESQUIRE_PORT", "abc")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "esquire: port must be a whole number, got 'abc'"


@pytest.mark.parametrize("text,ms", [("2s", 2000), ("5d", 432_000_000), ("100ms", 100), ("0", 0), ("-1", INFINITE),
                                     (-1, INFINITE), ("1m", 60_000), ("3H", 10_800_000), ("1500micros", 1)])
def test_time_values(text: object, ms: int) -> None:
    assert parse_time_ms(text, "keep_alive") == ms


@pytest.mark.parametrize("text,error,message", [
    ("10", ParseError, "failed to parse setting [keep_alive] with value [10] as a time value: unit is missing or unrecognized"),
    ("1.5s", ParseError, "failed to parse [1.5s], fractional time values are not supported"),
    ("5w", ParseError, "unit is missing or unrecognized"),
    ("-5s", BadRequest, "duration cannot be negative"),
])
def test_bad_time_values(text: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_time_ms(text, "keep_alive")


def test_booleans() -> None:
    assert parse_bool("", "x") is True and parse_bool("false", "x") is False
    with pytest.raises(BadRequest):
        parse_bool("yes", "x")
