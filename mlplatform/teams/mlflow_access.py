"""The MLflow auth calls team sync makes: users, roles and role permissions (RBAC, MLflow 3.17).

The routes and bodies are those of MLflow's AuthServiceClient, sent through the same REST
helpers it uses (mlflow.utils.rest_utils: retries, MlflowException on a refusal). The client
itself is not imported: its package loads MLflow's whole server app, 1.5 to 2.3 s of every task.
Used inside `Registry.client()`, logged in as the environment's admin (only an admin may create
users and roles); a refusal becomes a one-line RegistryError there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request, verify_rest_response
from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME

from mlplatform.teams.grants import Grant

__all__ = ["MlflowAccess", "UserEntry"]

_V2, _V3 = "/api/2.0/mlflow", "/api/3.0/mlflow"


@dataclass(frozen=True)
class UserEntry:
    """One MLflow user as the admin sees it."""

    name: str
    is_admin: bool
    roles: tuple[str, ...]


class MlflowAccess:
    """Users, roles and role permissions of one MLflow server (the default workspace)."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri

    def users(self) -> dict[str, UserEntry]:
        """Every user of the server, with the names of its roles (not its own grants' role)."""
        body = self._call("GET", f"{_V2}/users/list")
        return {
            u["username"]: UserEntry(
                u["username"],
                bool(u.get("is_admin")),
                tuple(r["name"] for r in u.get("roles", []) if not r["name"].startswith("__")),
            )
            for u in body.get("users", [])
        }

    def create_user(self, name: str, password: str) -> None:
        """Create the user `name`."""
        self._call("POST", f"{_V2}/users/create", json={"username": name, "password": password})

    def set_password(self, name: str, password: str) -> None:
        """Set another user's password (the admin needs no current password for it)."""
        body = {"username": name, "password": password}
        self._call("PATCH", f"{_V2}/users/update-password", json=body)

    def delete_user(self, name: str) -> None:
        """Delete the user: its role assignments and its own grants go with it."""
        self._call("DELETE", f"{_V2}/users/delete", json={"username": name})

    def roles(self) -> dict[str, int]:
        """The default workspace's roles: name -> id."""
        body = self._call("GET", f"{_V3}/roles/list", params={"workspace": DEFAULT_WORKSPACE_NAME})
        return {r["name"]: int(r["id"]) for r in body.get("roles", [])}

    def create_role(self, name: str, description: str) -> int:
        """Create a role in the default workspace; its id."""
        body = {"workspace": DEFAULT_WORKSPACE_NAME, "name": name, "description": description}
        return int(self._call("POST", f"{_V3}/roles/create", json=body)["role"]["id"])

    def delete_role(self, role_id: int) -> None:
        """Delete a role (its members lose what it granted)."""
        self._call("DELETE", f"{_V3}/roles/delete", json={"role_id": role_id})

    def grants(self, role_id: int) -> list[tuple[int, Grant]]:
        """The role's permissions: (role permission id, grant)."""
        path = f"{_V3}/roles/permissions/list"
        body = self._call("GET", path, params={"role_id": str(role_id)})
        return [
            (int(p["id"]), Grant(p["resource_type"], p["resource_pattern"], p["permission"]))
            for p in body.get("role_permissions", [])
        ]

    def add_grant(self, role_id: int, grant: Grant) -> None:
        """Add one permission to a role."""
        body = {
            "role_id": role_id,
            "resource_type": grant.resource_type,
            "resource_pattern": grant.pattern,
            "permission": grant.permission,
        }
        self._call("POST", f"{_V3}/roles/permissions/add", json=body)

    def update_grant(self, permission_id: int, permission: str) -> None:
        """Change the level of one of a role's permissions."""
        body = {"role_permission_id": permission_id, "permission": permission}
        self._call("PATCH", f"{_V3}/roles/permissions/update", json=body)

    def remove_grant(self, permission_id: int) -> None:
        """Remove one of a role's permissions."""
        body = {"role_permission_id": permission_id}
        self._call("DELETE", f"{_V3}/roles/permissions/remove", json=body)

    def assign(self, user: str, role_id: int) -> None:
        """Give `user` the role."""
        self._call("POST", f"{_V3}/roles/assign", json={"username": user, "role_id": role_id})

    def unassign(self, user: str, role_id: int) -> None:
        """Take the role from `user`."""
        self._call("DELETE", f"{_V3}/roles/unassign", json={"username": user, "role_id": role_id})

    def grant_user(self, user: str, grant: Grant) -> None:
        """A permission of `user`'s own, outside any team (`invoke grant`)."""
        body = {
            "username": user,
            "resource_type": grant.resource_type,
            "resource_id": grant.pattern,
            "permission": grant.permission,
        }
        self._call("POST", f"{_V3}/users/permissions/grant", json=body)

    def revoke_user(self, user: str, resource_type: str, pattern: str) -> None:
        """Take back a permission of `user`'s own."""
        body = {"username": user, "resource_type": resource_type, "resource_id": pattern}
        self._call("POST", f"{_V3}/users/permissions/revoke", json=body)

    def own_grants(self, user: str) -> list[Grant]:
        """The permissions `user` holds directly (the creator's MANAGE, `invoke grant`'s)."""
        body = self._call("GET", f"{_V3}/users/permissions/list", params={"username": user})
        return [
            Grant(r["resource_type"], r["resource_pattern"], r["permission"])
            for r in body.get("permissions", [])
            # MLflow keeps a user's own grants in a role of its own, `__user_<id>__`.
            if r["role_name"].startswith("__user_")
        ]

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        creds = get_default_host_creds(self.uri)  # type: ignore[no-untyped-call]
        response = http_request(creds, path, method, **kwargs)  # type: ignore[no-untyped-call]
        response = verify_rest_response(response, path)
        return response.json() if response.content else {}
