"""`invoke audit`: the MLflow server's audit lines (mlflow_server/audit.py), filtered.

The server writes each line to its stdout. Locally that is the MLflow service's log (the native
runtime's log file, or `compose logs`), as far back as it is kept; in the cloud it is the MLflow
log group in CloudWatch (`/<prefix>/mlflow`, retained `[E.mlflow] log_retention_days`), read with
FilterLogEvents under the operator's own credentials (logs:FilterLogEvents on that group).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from mlplatform.errors import ConfigError, PlatformError
from mlplatform.local.lifecycle import open_runtime
from mlplatform.target import Target

__all__ = ["MARKER", "audit_entries", "matching", "parse_since"]

# The key every audit line carries (mlflow_server.audit.MARKER: the image imports no kit code).
MARKER = "mlflow_audit"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`--since`: a duration back from now (`30m`, `2h`, `7d`) or an ISO time; epoch seconds."""
    now = time.time() if now is None else now
    duration = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if duration:
        return now - int(duration.group(1)) * _UNITS[duration.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since takes a duration (30m, 2h, 7d) or an ISO time, got {text!r}"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def matching(
    lines: Iterable[str], user: str | None = None, since: float | None = None
) -> list[dict[str, Any]]:
    """The audit entries among `lines` (other log lines are skipped), by user and time."""
    found = []
    for line in lines:
        start = line.find("{")
        if start < 0 or MARKER not in line:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get(MARKER) != 1:
            continue
        if user is not None and entry.get("user") != user:
            continue
        if since is not None and _epoch(entry.get("time")) < since:
            continue
        found.append(entry)
    return found


def audit_entries(
    target: Target, user: str | None = None, since: float | None = None
) -> list[dict[str, Any]]:
    """The environment's audit entries, oldest first, `user`'s only and from `since` if given."""
    if target.is_local:
        lines: Iterable[str] = open_runtime(target.env, target.paths).logs("mlflow", lines=None)
    else:
        lines = _cloudwatch_lines(target, since)
    return matching(lines, user, since)


def _cloudwatch_lines(target: Target, since: float | None) -> Iterator[str]:
    group = f"/{target.env.name_prefix}/mlflow"
    request: dict[str, Any] = {"logGroupName": group, "filterPattern": f"{{ $.{MARKER} = 1 }}"}
    if since is not None:
        request["startTime"] = int(since * 1000)
    try:
        for page in target.client("logs").get_paginator("filter_log_events").paginate(**request):
            for event in page.get("events", []):
                yield event["message"]
    except botocore.exceptions.ClientError as exc:
        raise PlatformError(f"cannot read {target.name}'s audit trail in {group}: {exc}") from exc


def _epoch(stamp: object) -> float:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
