"""Settings, named-query loading and JSON logs: the pieces every process starts with."""

import json
import logging

import pytest
from pydantic import ValidationError

from aoer.config import Settings
from aoer.db.queries import parse_queries, query
from aoer.log import JsonFormatter


def test_settings_read_the_design_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOER_CRON", "*/5 * * * *")
    monkeypatch.setenv("AOER_BATCH_SIZE", "250")
    monkeypatch.setenv("RUN_CRON", "false")
    monkeypatch.setenv("AOER_LEASE_SECONDS", "12")
    settings = Settings()
    assert (settings.cron, settings.batch_size, settings.run_cron) == ("*/5 * * * *", 250, False)
    assert settings.lease_s == 12


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AOER_CRON", "every tuesday", "not a valid cron expression"),
        ("AOER_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("AOER_LOG_FORMAT", "xml", "must be 'text' or 'json'"),
    ],
)
def test_bad_settings_are_refused_with_their_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_an_alert_lease_shorter_than_an_attempt_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook still waiting when its lease ends would be sent again by another worker."""
    monkeypatch.setenv("AOER_ALERT_HTTP_TIMEOUT_SECONDS", "30")
    for lease in ("30", "5"):
        monkeypatch.setenv("AOER_ALERT_LEASE_SECONDS", lease)
        with pytest.raises(ValidationError, match=r"AOER_ALERT_LEASE_SECONDS \(\d+\) must be"):
            Settings()
    monkeypatch.setenv("AOER_ALERT_LEASE_SECONDS", "31")
    assert Settings().alert_lease_s == 31


def test_named_queries_are_split_on_their_headers() -> None:
    parsed = parse_queries("-- name: a\n-- doc\nSELECT 1;\n\n-- name: b\nSELECT 2;\n")
    assert parsed == {"a": "-- doc\nSELECT 1;", "b": "SELECT 2;"}


def test_a_duplicate_query_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_shipped_queries_load_and_unknown_names_fail() -> None:
    assert "FOR UPDATE SKIP LOCKED" in query("claim_jobs")
    with pytest.raises(KeyError, match="no SQL query named 'nope'"):
        query("nope")


def test_json_logs_carry_the_structured_fields() -> None:
    record = logging.LogRecord("aoer.queue", logging.INFO, __file__, 1, "[AOER] %s", ("x",), None)
    record.tenant_id = "t-1"
    record.action = "enqueue"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "[AOER] x"
    assert (entry["tenant_id"], entry["action"], entry["level"]) == ("t-1", "enqueue", "info")
