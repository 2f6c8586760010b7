"""Reading the audit trail: the server's lines among other log lines, by user and time."""

from __future__ import annotations

import json

import pytest

from mlplatform.errors import ConfigError
from mlplatform.teams.audit import MARKER, matching, parse_since

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def line(user: str, time: str, prefix: str = "") -> str:
    return prefix + json.dumps({MARKER: 1, "user": user, "time": time, "outcome": "denied"})


LOG = [
    "INFO:     127.0.0.1:5000 - GET /health 200",
    line("ann", "2027-01-15T07:00:00.000Z"),
    # CloudWatch and compose put a prefix before the line the server wrote.
    line("ben", "2027-01-15T07:30:00.000Z", prefix="mlflow-1  | "),
    '{"not": "an audit line"}',
    "{broken json " + MARKER,
    line("ann", "2027-01-15T07:59:00.000Z"),
]


def test_only_audit_lines_are_entries_filtered_by_user_and_time() -> None:
    assert [e["user"] for e in matching(LOG)] == ["ann", "ben", "ann"]
    assert [e["time"][11:16] for e in matching(LOG, user="ann")] == ["07:00", "07:59"]
    since = parse_since("45m", now=NOW)
    assert [e["user"] for e in matching(LOG, since=since)] == ["ben", "ann"]
    assert matching(LOG, user="ben", since=parse_since("10m", now=NOW)) == []


@pytest.mark.parametrize(
    ("text", "seconds_back"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800)]
)
def test_since_takes_durations(text: str, seconds_back: int) -> None:
    assert parse_since(text, now=NOW) == NOW - seconds_back


def test_since_takes_iso_times_utc_unless_told() -> None:
    assert parse_since("2027-01-15T07:00:00Z") == NOW - 3600
    assert parse_since("2027-01-15T07:00:00") == NOW - 3600
    assert parse_since("2027-01-15T08:00:00+01:00") == NOW - 3600


@pytest.mark.parametrize("text", ["yesterday", "10 minutes", "-5m", ""])
def test_a_bad_since_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="--since takes a duration"):
        parse_since(text, now=NOW)
