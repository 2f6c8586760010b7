"""The kit's MLflow auth calls send exactly what MLflow's own AuthServiceClient sends.

mlflow_access.py does not import the client (its package loads MLflow's server app, seconds of
every task), so this pins each request, method, path and body, to the client's: an MLflow
upgrade that moves a route fails here, not in a team sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mlflow.server.auth import client as mlflow_client
from mlflow.server.auth import routes
from mlflow.server.auth.client import AuthServiceClient

from mlplatform.teams import mlflow_access
from mlplatform.teams.grants import Grant
from mlplatform.teams.mlflow_access import MlflowAccess

URI = "http://127.0.0.1:1"
GRANT = Grant("registered_model", "fraud-classifier", "READ")


class Sent(Exception):
    """Raised in place of sending: the request is recorded, nothing is parsed."""


def recorder(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[tuple[str, str, Any]]:
    sent: list[tuple[str, str, Any]] = []

    def http_request(host_creds: Any, endpoint: str, method: str, **kwargs: Any) -> Any:
        sent.append((method, endpoint, kwargs.get("json", kwargs.get("params"))))
        raise Sent

    monkeypatch.setattr(module, "http_request", http_request)
    return sent


def request_of(call: Callable[[], Any], sent: list[tuple[str, str, Any]]) -> tuple[str, str, Any]:
    with pytest.raises(Sent):
        call()
    return sent.pop()


PAIRS: dict[str, tuple[Callable[[MlflowAccess], Any], Callable[[AuthServiceClient], Any]]] = {
    "create_user": (lambda a: a.create_user("u", "p"), lambda c: c.create_user("u", "p")),
    "set_password": (
        lambda a: a.set_password("u", "p"),
        lambda c: c.update_user_password("u", "p"),
    ),
    "delete_user": (lambda a: a.delete_user("u"), lambda c: c.delete_user("u")),
    "roles": (lambda a: a.roles(), lambda c: c.list_roles("default")),
    "create_role": (
        lambda a: a.create_role("team-x", "d"),
        lambda c: c.create_role("default", "team-x", "d"),
    ),
    "delete_role": (lambda a: a.delete_role(3), lambda c: c.delete_role(3)),
    "grants": (lambda a: a.grants(3), lambda c: c.list_role_permissions(3)),
    "add_grant": (
        lambda a: a.add_grant(3, GRANT),
        lambda c: c.add_role_permission(3, GRANT.resource_type, GRANT.pattern, GRANT.permission),
    ),
    "update_grant": (
        lambda a: a.update_grant(7, "MANAGE"),
        lambda c: c.update_role_permission(7, "MANAGE"),
    ),
    "remove_grant": (lambda a: a.remove_grant(7), lambda c: c.remove_role_permission(7)),
    "assign": (lambda a: a.assign("u", 3), lambda c: c.assign_role("u", 3)),
    "unassign": (lambda a: a.unassign("u", 3), lambda c: c.unassign_role("u", 3)),
    "grant_user": (
        lambda a: a.grant_user("u", GRANT),
        lambda c: c.grant_user_permission("u", GRANT.resource_type, GRANT.pattern, "READ"),
    ),
    "revoke_user": (
        lambda a: a.revoke_user("u", GRANT.resource_type, GRANT.pattern),
        lambda c: c.revoke_user_permission("u", GRANT.resource_type, GRANT.pattern),
    ),
}


@pytest.mark.parametrize("name", PAIRS)
def test_each_call_is_the_one_mlflows_client_makes(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = PAIRS[name]
    sent_by_us = recorder(monkeypatch, mlflow_access)
    sent_by_mlflow = recorder(monkeypatch, mlflow_client)
    assert request_of(lambda: ours(MlflowAccess(URI)), sent_by_us) == request_of(
        lambda: theirs(AuthServiceClient(URI)), sent_by_mlflow
    )


@pytest.mark.parametrize(
    ("call", "route"),
    [
        (lambda a: a.users(), routes.LIST_USERS),
        (lambda a: a.own_grants("u"), routes.LIST_USER_PERMISSIONS),
    ],
    ids=["users", "own_grants"],
)
def test_the_admin_lists_the_client_has_no_method_for_use_mlflows_routes(
    call: Callable[[MlflowAccess], Any], route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = recorder(monkeypatch, mlflow_access)
    method, path, _ = request_of(lambda: call(MlflowAccess(URI)), sent)
    assert (method, path) == ("GET", route)
