"""`invoke team-sync --env E`: make an environment's MLflow match the teams file, and nothing more.

Every check runs before the first change, so a bad teams file or a clash with the environment
(a member named like its admin, a member who is an MLflow admin) changes nothing. Then, in this
order (grants exist before anyone is given them; removals come last):

    1. models: each team model's experiment exists (its id is what a role grants on), and its
       registered model, so no member of another team can create it and own it;
    2. roles: one per team, holding exactly the grants of grants.team_grants; roles of teams
       no longer in the file are deleted; the training client user's role covers every model;
    3. users: each member exists, with a login in Secrets Manager written before MLflow hears
       of the password; a member whose secret is gone (an emulator restarted) gets a new one;
    4. membership: each user has exactly the roles of its teams; a member's own grants on other
       teams' models (MANAGE on what it created there) are revoked;
    5. removal: members the sync added and the file no longer names are deleted, secret too.

A second run with the same file changes nothing. The admin logs in for all of it: the one task
the admin login is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.exceptions import MlflowException

from mlplatform.cloud.user_logins import FROM_TEAMS, Logins
from mlplatform.errors import ConfigError
from mlplatform.local.credentials import new_password
from mlplatform.reporting import JsonFields, Reporter
from mlplatform.roster import Roster
from mlplatform.target import Target
from mlplatform.teams.grants import (
    TRAINING_ROLE,
    Grant,
    changes,
    role_name,
    team_grants,
    team_of_role,
    training_grants,
)
from mlplatform.teams.mlflow_access import MlflowAccess, UserEntry

__all__ = ["SyncReport", "ensure_login", "refuse_reserved", "sync_teams"]


@dataclass
class SyncReport(JsonFields):
    """What a sync changed; all lists empty when the environment already matched the file."""

    env: str
    experiments_created: list[str] = field(default_factory=list)
    models_created: list[str] = field(default_factory=list)
    roles_created: list[str] = field(default_factory=list)
    roles_changed: list[str] = field(default_factory=list)
    roles_deleted: list[str] = field(default_factory=list)
    users_created: list[str] = field(default_factory=list)
    new_passwords: list[str] = field(default_factory=list)
    assigned: list[str] = field(default_factory=list)  # "user -> team"
    unassigned: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # "user: resource_type pattern"
    users_removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything changed."""
        return any(value for key, value in vars(self).items() if key != "env")


def refuse_reserved(target: Target, users: dict[str, UserEntry], names: set[str]) -> None:
    """ConfigError when a name is the environment's admin or client user, or an MLflow admin."""
    settings = target.env.mlflow
    for name in sorted(names):
        if name in (settings.admin_username, settings.client_username):
            raise ConfigError(
                f"{name!r} is {target.name}'s MLflow admin or training client user, "
                "not a person; pick another name"
            )
        if name in users and users[name].is_admin:
            raise ConfigError(f"{name!r} is an MLflow admin in {target.name}; members are not")


def _experiment_ids(client: Any, models: list[str], report: SyncReport) -> dict[str, str]:
    """Each model's experiment id (the experiment named like the model), created when missing."""
    ids = {}
    for model in models:
        experiment = client.get_experiment_by_name(model)
        if experiment is None:
            ids[model] = client.create_experiment(model)
            report.experiments_created.append(model)
        else:
            ids[model] = experiment.experiment_id
    return ids


def sync_teams(target: Target, roster: Roster, reporter: Reporter) -> SyncReport:
    """Make `target`'s MLflow users, roles and grants match `roster`; what changed."""
    report = SyncReport(target.name)
    logins = Logins(target.env, target.client("secretsmanager"))
    registry = target.registry()
    with registry.client() as client:
        access = MlflowAccess(registry.tracking_uri)
        users = access.users()
        members = roster.members()
        refuse_reserved(target, users, members)
        managed = logins.managed()
        reporter.step(f"syncing {len(roster.teams)} teams into {target.name}'s MLflow")
        models = [model for team in roster.teams.values() for model in team.models]
        ids = _experiment_ids(client, models, report)
        _claim_models(client, models, report)
        role_ids = _sync_roles(access, roster, ids, report)
        client_user = target.env.mlflow.client_username
        if client_user in users and TRAINING_ROLE not in users[client_user].roles:
            access.assign(client_user, role_ids[TRAINING_ROLE])
            report.assigned.append(f"{client_user} -> {TRAINING_ROLE}")
        for member in sorted(members):
            done = ensure_login(access, logins, member, users, FROM_TEAMS)
            if done != "unchanged":
                field = report.users_created if done == "created" else report.new_passwords
                field.append(member)
        for name in sorted(members | set(users)):
            entry = users.get(name, UserEntry(name, False, ()))
            if not entry.is_admin:
                _sync_membership(access, roster, role_ids, entry, report)
        # Members, and users a team role is taken from now: their creator's grants go too.
        in_teams = members | {n for n, u in users.items() if any(map(team_of_role, u.roles))}
        _revoke_foreign(access, roster, ids, in_teams, report)
        for name, managed_by in sorted(managed.items()):
            if managed_by == FROM_TEAMS and name not in members:
                if name in users:
                    access.delete_user(name)
                logins.delete(name)
                report.users_removed.append(name)
    reporter.done(
        f"{target.name}: teams file applied" if report.changed else f"{target.name}: unchanged"
    )
    return report


def _sync_roles(
    access: MlflowAccess, roster: Roster, ids: dict[str, str], report: SyncReport
) -> dict[str, int]:
    existing = access.roles()
    role_ids = {
        team: _ensure_role(
            access,
            existing,
            role_name(team),
            f"members of team {team} (teams.toml)",
            team_grants(roster, team, ids),
            report,
        )
        for team in roster.teams
    }
    for name, role_id in sorted(existing.items()):
        team = team_of_role(name)
        if team is not None and team not in roster.teams:
            access.delete_role(role_id)
            report.roles_deleted.append(name)
    role_ids[TRAINING_ROLE] = _ensure_role(
        access,
        existing,
        TRAINING_ROLE,
        "the training client user: every team's models",
        training_grants(roster, ids),
        report,
    )
    return role_ids


def _ensure_role(
    access: MlflowAccess,
    existing: dict[str, int],
    name: str,
    description: str,
    desired: frozenset[Grant],
    report: SyncReport,
) -> int:
    if name not in existing:
        existing[name] = access.create_role(name, description)
        report.roles_created.append(name)
    todo = changes(access.grants(existing[name]), desired)
    for grant in todo.add:
        access.add_grant(existing[name], grant)
    for permission_id, grant in todo.update:
        access.update_grant(permission_id, grant.permission)
    for permission_id in todo.remove:
        access.remove_grant(permission_id)
    if todo and name not in report.roles_created:
        report.roles_changed.append(name)
    return existing[name]


def _claim_models(client: Any, models: list[str], report: SyncReport) -> None:
    """Create each team model's registered model, so no one else can create (and own) it."""
    for model in models:
        try:
            client.get_registered_model(model)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(model, description="created by team-sync")
            report.models_created.append(model)


def ensure_login(
    access: MlflowAccess,
    logins: Logins,
    name: str,
    users: dict[str, UserEntry],
    managed_by: str,
) -> str:
    """Make `name` an MLflow user whose password is its stored login; what was done.

    'created', 'new password' (the user existed without a stored login) or 'unchanged'.
    """
    password = logins.password(name)
    if password is None:
        password = new_password()
        # The secret first: a password MLflow holds and no secret does would lock them out.
        logins.store(name, password, managed_by)
        if name in users:
            access.set_password(name, password)
            return "new password"
    # A login that exists already (a training user's, generated by CDK) is the one to create.
    if name not in users:
        access.create_user(name, password)
        return "created"
    return "unchanged"


def _sync_membership(
    access: MlflowAccess,
    roster: Roster,
    role_ids: dict[str, int],
    entry: UserEntry,
    report: SyncReport,
) -> None:
    wanted = set(roster.teams_of(entry.name))
    held = {team for role in entry.roles if (team := team_of_role(role)) is not None}
    for team in sorted(wanted - held):
        access.assign(entry.name, role_ids[team])
        report.assigned.append(f"{entry.name} -> {team}")
    for team in sorted(held - wanted):
        # A role of a team no longer in the file was deleted above, with its assignments.
        if team in role_ids:
            access.unassign(entry.name, role_ids[team])
            report.unassigned.append(f"{entry.name} -> {team}")


def _revoke_foreign(
    access: MlflowAccess,
    roster: Roster,
    ids: dict[str, str],
    users: set[str],
    report: SyncReport,
) -> None:
    """Revoke users' own grants on team models outside their teams (MANAGE as creator)."""
    model_of = {("registered_model", m): m for m in ids} | {
        ("experiment", i): m for m, i in ids.items()
    }
    for user in sorted(users):
        teams = set(roster.teams_of(user))
        for grant in access.own_grants(user):
            model = model_of.get(grant.resource)
            if model is not None and roster.owner(model) not in teams:
                access.revoke_user(user, grant.resource_type, grant.pattern)
                report.revoked.append(f"{user}: {grant.resource_type} {grant.pattern}")
