"""The server's audit trail: one JSON line per state-changing or refused request, on stdout.

MLflow's access log names no user, and its auth app has one hook for the kit: the authorization
function (basic_auth.ini). `authenticate_request` is MLflow's own basic-auth check; around it, it
asks Flask to call `_record` with the response, which has the outcome:

    {"mlflow_audit": 1, "time": "2026-12-07T23:50:01.123Z", "user": "ann",
     "action": "POST /api/2.0/mlflow/registered-models/set-tag", "status": 403,
     "outcome": "denied", "resource": {"name": "teams-beta-model"}, "source": "127.0.0.1"}

Lines go to stdout, which the kit keeps in the service's log locally and ECS sends to the MLflow
log group in CloudWatch; `invoke audit` reads them from either. Each line is one write(2) of
less than 4 KiB, so the workers' lines never interleave. Only the request fields that name a
resource are copied (never a password or a tag's value). Routes MLflow serves with FastAPI
itself (gateway, traces over OTLP, jobs) authenticate outside Flask and are not recorded.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from flask import Response, after_this_request, g, request
from mlflow.server.auth import authenticate_request_basic_auth

__all__ = ["MARKER", "authenticate_request", "entry"]

MARKER = "mlflow_audit"
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that only read (searches, batched gets): not state changes.
_READS = frozenset({"search", "get", "get-history-bulk-interval", "search-datasets", "list"})
# Request fields that name what a request acts on, in the order they are reported.
_RESOURCE_FIELDS = (
    "name",
    "version",
    "alias",
    "experiment_id",
    "run_id",
    "key",
    "username",
    "role_id",
    "resource_type",
    "resource_id",
    "permission",
)
_MAX_FIELD = 200


def authenticate_request() -> Any:
    """MLflow's basic-auth check, with the request's outcome recorded once it is known."""
    result = authenticate_request_basic_auth()
    # MLflow asks for the user more than once in a request (to stamp owners): record once.
    if not g.get("_mlp_audit"):
        g._mlp_audit = True
        user = request.authorization.username if request.authorization else None
        after_this_request(lambda response: _record(response, user))
    return result


def _record(response: Response, user: str | None) -> Response:
    fields = request.get_json(silent=True) if request.is_json else None
    params = {**request.args.to_dict(), **(fields if isinstance(fields, dict) else {})}
    forwarded = request.headers.get("X-Forwarded-For", "")
    # The load balancer appends the address it saw; earlier entries are the client's claims.
    source = forwarded.split(",")[-1].strip() if forwarded else request.remote_addr
    line = entry(request.method, request.path, response.status_code, user, params, source)
    if line is not None:
        _emit(line)
    return response


def _emit(line: dict[str, Any]) -> None:
    os.write(1, (json.dumps(line, separators=(",", ":")) + "\n").encode())


def entry(
    method: str,
    path: str,
    status: int,
    user: str | None,
    params: dict[str, Any],
    source: str | None,
) -> dict[str, Any] | None:
    """The audit line of one request, or None when it neither changed state nor was refused."""
    outcome = (
        "allowed" if status < 400 else {401: "unauthenticated", 403: "denied"}.get(status, "failed")
    )
    changes = method in _CHANGES and path.rstrip("/").rsplit("/", 1)[-1] not in _READS
    if not changes and outcome not in ("denied", "unauthenticated"):
        return None
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return {
        MARKER: 1,
        "time": stamp,
        "user": user,
        "action": f"{method} {path}",
        "status": status,
        "outcome": outcome,
        "resource": {
            key: str(params[key])[:_MAX_FIELD] for key in _RESOURCE_FIELDS if key in params
        },
        "source": source,
    }
