"""MLflow users the platform needs besides the admin (the client, training user), and passwords.

The admin creates it through MLflow's basic-auth REST API. Least privilege: the client user can
create experiments and register models (it then manages what it created) but sees nothing else,
since the server's default permission is NO_PERMISSIONS.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from mlplatform.errors import PlatformError

__all__ = ["can_log_in", "ensure_user", "set_password"]


def _call(
    base_url: str, method: str, path: str, auth: tuple[str, str], body: dict[str, str] | None = None
) -> int:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (the kit's own server)
        base_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        raise PlatformError(f"MLflow at {base_url} is unreachable: {exc}") from exc


def ensure_user(base_url: str, admin: tuple[str, str], user: tuple[str, str]) -> str:
    """Make `user` (name, password) exist with that password.

    Returns what was done: 'unchanged', 'created' or 'password reset'.
    """
    if can_log_in(base_url, user):
        return "unchanged"
    status = _call(
        base_url,
        "POST",
        "/api/2.0/mlflow/users/create",
        admin,
        {"username": user[0], "password": user[1]},
    )
    if status == 200:
        return "created"
    set_password(base_url, admin, user)
    return "password reset"


def can_log_in(base_url: str, user: tuple[str, str]) -> bool:
    """Whether `user` (name, password) logs in: an API call any user may make answers 200."""
    probe = "/api/2.0/mlflow/experiments/search?max_results=1"
    return _call(base_url, "GET", probe, user) == 200


def set_password(base_url: str, admin: tuple[str, str], user: tuple[str, str]) -> None:
    """Set `user`'s password (the admin's own too) through MLflow's users/update-password."""
    body = {"username": user[0], "password": user[1]}
    if admin[0] == user[0]:
        # MLflow asks for the current password when a user changes their own.
        body["current_password"] = admin[1]
    status = _call(base_url, "PATCH", "/api/2.0/mlflow/users/update-password", admin, body)
    if status != 200:
        raise PlatformError(
            f"could not set the password of MLflow user {user[0]!r} (HTTP {status})"
        )
