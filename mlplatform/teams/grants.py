"""What each team's MLflow role must grant, and the changes that take a role from what it has there.

A team is one MLflow role (`team-<name>`, RBAC of MLflow's basic-auth app) that its members are
assigned. The role holds MANAGE on the team's models (registered model and the experiment of the
same name, where `invoke train` logs) and READ on the models other teams share with it; the
server's default permission, NO_PERMISSIONS, leaves everything else invisible. The training
client user, which training jobs log in as, holds the role `platform-training`: MANAGE on every
team's models, since the sync creates them as the admin. Pure functions: the MLflow calls live in
mlflow_access.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlplatform.roster import Roster

__all__ = [
    "MANAGE",
    "PERMISSIONS",
    "READ",
    "ROLE_PREFIX",
    "TRAINING_ROLE",
    "Grant",
    "RoleChanges",
    "changes",
    "role_name",
    "team_grants",
    "team_of_role",
    "training_grants",
]

READ, MANAGE = "READ", "MANAGE"
# MLflow's permission levels, weakest first (what `invoke grant` accepts).
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE")
ROLE_PREFIX = "team-"
# The role of the environment's training client user, which every team's jobs log in as.
TRAINING_ROLE = "platform-training"


@dataclass(frozen=True, order=True)
class Grant:
    """One permission of a role: `permission` on the resource `resource_type`/`pattern`."""

    resource_type: str  # "experiment" (pattern: its id) or "registered_model" (its name)
    pattern: str
    permission: str

    @property
    def resource(self) -> tuple[str, str]:
        """The resource the grant is on, without its level."""
        return self.resource_type, self.pattern


@dataclass(frozen=True)
class RoleChanges:
    """What to do to a role's permissions: grants to add, to change level, and ids to remove."""

    add: tuple[Grant, ...]
    update: tuple[tuple[int, Grant], ...]  # (role permission id, the grant it must become)
    remove: tuple[int, ...]

    def __bool__(self) -> bool:
        return bool(self.add or self.update or self.remove)


def role_name(team: str) -> str:
    """The MLflow role of `team`."""
    return ROLE_PREFIX + team


def team_of_role(role: str) -> str | None:
    """The team a role name belongs to, or None for a role the kit does not manage."""
    return role[len(ROLE_PREFIX) :] if role.startswith(ROLE_PREFIX) else None


def team_grants(roster: Roster, team: str, experiment_ids: Mapping[str, str]) -> frozenset[Grant]:
    """Every grant `team`'s role must hold; `experiment_ids` maps a model to its experiment's id."""
    owned = _model_grants(roster.team(team).models, MANAGE, experiment_ids)
    return owned | _model_grants(roster.readable(team), READ, experiment_ids)


def training_grants(roster: Roster, experiment_ids: Mapping[str, str]) -> frozenset[Grant]:
    """The training role's grants: MANAGE on every team's models (log, register, undo)."""
    models = [model for team in roster.teams.values() for model in team.models]
    return _model_grants(models, MANAGE, experiment_ids)


def _model_grants(
    models: Iterable[str], permission: str, experiment_ids: Mapping[str, str]
) -> frozenset[Grant]:
    grants = set()
    for model in models:
        grants.add(Grant("registered_model", model, permission))
        grants.add(Grant("experiment", experiment_ids[model], permission))
    return frozenset(grants)


def changes(current: Iterable[tuple[int, Grant]], desired: frozenset[Grant]) -> RoleChanges:
    """The changes from `current` (role permission id, grant) to exactly `desired`."""
    wanted = {grant.resource: grant for grant in desired}
    update, remove, seen = [], [], set()
    for permission_id, grant in sorted(current, key=lambda item: item[1]):
        target = wanted.get(grant.resource)
        if target is None or grant.resource in seen:
            remove.append(permission_id)
        elif target != grant:
            update.append((permission_id, target))
        seen.add(grant.resource)
    add = tuple(sorted(g for g in desired if g.resource not in seen))
    return RoleChanges(add=add, update=tuple(update), remove=tuple(remove))
