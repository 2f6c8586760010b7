"""The server's audit lines (mlflow_server/audit.py), through a Flask app run as MLflow runs its
own: the authorization function called before each request, the response recorded after it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, abort, request
from werkzeug.datastructures import Authorization

from mlflow_server import audit


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[dict[str, Any]]]:
    """A Flask app whose login check is MLflow's stand-in: user `ann`, password `pw`."""
    lines: list[dict[str, Any]] = []
    monkeypatch.setattr(audit, "_emit", lines.append)

    def basic_auth() -> Any:
        given = request.authorization
        if given is None or (given.username, given.password) != ("ann", "pw"):
            return Response("login", status=401)
        return given

    monkeypatch.setattr(audit, "authenticate_request_basic_auth", basic_auth)
    app = Flask(__name__)

    @app.before_request
    def check() -> Any:
        result = audit.authenticate_request()
        if isinstance(result, Response):
            return result
        assert isinstance(audit.authenticate_request(), Authorization)  # asked twice: one line
        if request.path.endswith("/forbidden"):
            abort(403)
        return None

    @app.route("/api/2.0/mlflow/<path:route>", methods=["GET", "POST", "PATCH", "DELETE"])
    def handler(route: str) -> str:
        return "{}"

    return app.test_client(), lines


def test_a_change_is_one_line_with_user_resource_and_outcome(client: Any) -> None:
    http, lines = client
    body = {"name": "fraud-classifier", "key": "stage", "value": "secret-ish", "password": "x"}
    response = http.post(
        "/api/2.0/mlflow/registered-models/set-tag",
        json=body,
        auth=("ann", "pw"),
        headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.7"},
    )
    assert response.status_code == 200
    (line,) = lines
    assert line["user"] == "ann" and line["outcome"] == "allowed" and line["status"] == 200
    assert line["action"] == "POST /api/2.0/mlflow/registered-models/set-tag"
    # Names of what was acted on; never a value or a password.
    assert line["resource"] == {"name": "fraud-classifier", "key": "stage"}
    # The address the load balancer saw, not what the client claimed before it.
    assert line["source"] == "10.0.0.7"
    assert line["time"].endswith("Z") and line[audit.MARKER] == 1


def test_reads_are_not_recorded_and_refusals_are(client: Any) -> None:
    http, lines = client
    http.get("/api/2.0/mlflow/registered-models/get?name=m", auth=("ann", "pw"))
    http.post("/api/2.0/mlflow/runs/search", json={"experiment_ids": ["1"]}, auth=("ann", "pw"))
    assert lines == []
    http.get("/api/2.0/mlflow/registered-models/forbidden?name=theirs", auth=("ann", "pw"))
    http.get("/api/2.0/mlflow/experiments/search", auth=("ann", "wrong"))
    http.get("/api/2.0/mlflow/experiments/search")
    assert [(line["user"], line["outcome"], line["status"]) for line in lines] == [
        ("ann", "denied", 403),
        ("ann", "unauthenticated", 401),
        (None, "unauthenticated", 401),
    ]
    assert lines[0]["resource"] == {"name": "theirs"}
    assert lines[2]["source"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("method", "path", "status", "recorded"),
    [
        ("DELETE", "/api/2.0/mlflow/registered-models/delete", 200, "allowed"),
        ("PATCH", "/api/2.0/mlflow/registered-models/update", 500, "failed"),
        ("POST", "/api/2.0/mlflow/model-versions/search", 200, None),
        ("GET", "/api/2.0/mlflow/runs/get", 404, None),
    ],
)
def test_entry_keeps_changes_and_refusals_only(
    method: str, path: str, status: int, recorded: str | None
) -> None:
    line = audit.entry(method, path, status, "ann", {}, "127.0.0.1")
    assert (line and line["outcome"]) == recorded
