"""The ad hoc cases beside the teams file: `invoke user-add|user-remove|users|grant`, `env --user`.

Users added here are nobody's member (an auditor, a service): `team-sync` leaves them alone.
People who belong to a team are named in the teams file instead, and a grant on a team's model
to a member of another team is a share there, so both are refused here with that advice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException

from mlplatform.cloud.user_logins import AD_HOC, Logins
from mlplatform.errors import ConfigError
from mlplatform.reporting import JsonFields
from mlplatform.roster import Roster
from mlplatform.target import Target
from mlplatform.teams.grants import PERMISSIONS, Grant, team_of_role
from mlplatform.teams.mlflow_access import MlflowAccess
from mlplatform.teams.sync import ensure_login, refuse_reserved

__all__ = ["UserRow", "add_user", "grant", "list_users", "login_variables", "remove_user"]


@dataclass(frozen=True)
class UserRow(JsonFields):
    """One user of an environment's MLflow, as `invoke users` lists it."""

    name: str
    teams: list[str]
    admin: bool
    managed_by: str  # "team-sync", "user-add", or "" (no login stored: the kit's own users)


def add_user(target: Target, name: str) -> str:
    """Create `name` with a generated password kept in Secrets Manager; 'created' or 'unchanged'.

    A user that exists without a stored login gets a new password ('new password'); a stored
    login without its user is created with the stored password (sync.ensure_login).
    """
    logins = Logins(target.env, target.client("secretsmanager"))
    registry = target.registry()
    with registry.client():
        access = MlflowAccess(registry.tracking_uri)
        users = access.users()
        refuse_reserved(target, users, {name})
        return ensure_login(access, logins, name, users, AD_HOC)


def remove_user(target: Target, roster: Roster, name: str) -> None:
    """Delete `name` from MLflow, and its login; refused for a member of the teams file."""
    teams = roster.teams_of(name)
    if teams:
        raise ConfigError(
            f"{name!r} is a member of team {teams[0]!r} in the teams file: "
            "remove them there and run `invoke team-sync`"
        )
    logins = Logins(target.env, target.client("secretsmanager"))
    registry = target.registry()
    with registry.client():
        access = MlflowAccess(registry.tracking_uri)
        users = access.users()
        if name not in users:
            raise ConfigError(f"no user {name!r} in {target.name}'s MLflow")
        refuse_reserved(target, users, {name})
        access.delete_user(name)
    logins.delete(name)


def list_users(target: Target) -> list[UserRow]:
    """Every user of `target`'s MLflow, with its teams and where its login is kept."""
    managed = Logins(target.env, target.client("secretsmanager")).managed()
    registry = target.registry()
    with registry.client():
        users = MlflowAccess(registry.tracking_uri).users()
    return [
        UserRow(
            name=entry.name,
            teams=[t for role in entry.roles if (t := team_of_role(role)) is not None],
            admin=entry.is_admin,
            managed_by=managed.get(entry.name, ""),
        )
        for entry in sorted(users.values(), key=lambda u: u.name)
    ]


def grant(
    target: Target, roster: Roster, user: str, model: str, permission: str, revoke: bool = False
) -> list[Grant]:
    """Give `user` `permission` on `model` (its registered model and experiment), or take it.

    The grants made or revoked. Refused: an unknown user or model, a level MLflow does not know,
    and a member of a team on another team's model (a share in the teams file instead).
    """
    if permission not in PERMISSIONS:
        raise ConfigError(
            f"--permission must be one of {', '.join(PERMISSIONS)}, got {permission!r}"
        )
    owner = roster.owner(model)
    if owner is not None and roster.teams_of(user) and owner not in roster.teams_of(user):
        raise ConfigError(
            f"{model!r} belongs to team {owner!r}: share it with {user!r}'s team in the "
            "teams file instead"
        )
    registry = target.registry()
    with registry.client() as client:
        access = MlflowAccess(registry.tracking_uri)
        users = access.users()
        if user not in users:
            raise ConfigError(
                f"no user {user!r} in {target.name}'s MLflow; `invoke users` lists them"
            )
        refuse_reserved(target, users, {user})
        grants = _model_grants(client, model, permission)
        for item in grants:
            if revoke:
                access.revoke_user(user, item.resource_type, item.pattern)
            else:
                access.grant_user(user, item)
    return grants


def _model_grants(client: Any, model: str, permission: str) -> list[Grant]:
    grants = []
    try:
        client.get_registered_model(model)
        grants.append(Grant("registered_model", model, permission))
    except MlflowException:
        pass
    experiment = client.get_experiment_by_name(model)
    if experiment is not None:
        grants.append(Grant("experiment", experiment.experiment_id, permission))
    if not grants:
        raise ConfigError(f"no model {model!r} (registered model or experiment) in MLflow")
    return grants


def login_variables(target: Target, sm: Any, tracking_uri: str, user: str) -> dict[str, str]:
    """The MLflow variables that log a shell in as `user` (its password from Secrets Manager).

    `sm` is the environment's Secrets Manager client; one line if `user` has no login there.
    """
    return {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": Logins(target.env, sm).required(user),
    }
