"""What each team's role grants, and the smallest changes that get a role there."""

from __future__ import annotations

from pathlib import Path

from mlplatform.roster import Roster, load_roster
from mlplatform.teams.grants import (
    Grant,
    changes,
    role_name,
    team_grants,
    team_of_role,
    training_grants,
)

IDS = {"fraud-classifier": "1", "demand-forecast": "2", "churn": "3"}


def roster(tmp_path: Path) -> Roster:
    file = tmp_path / "teams.toml"
    file.write_text(
        """
[teams.fraud]
members = ["alice"]
models = ["fraud-classifier"]
shares = { fraud-classifier = ["forecasting"] }

[teams.forecasting]
members = ["carol"]
models = ["demand-forecast"]

[teams.growth]
models = ["churn"]
""",
        encoding="utf-8",
    )
    return load_roster(file)


def test_a_team_manages_its_models_and_reads_what_is_shared_with_it(tmp_path: Path) -> None:
    teams = roster(tmp_path)
    assert team_grants(teams, "fraud", IDS) == {
        Grant("registered_model", "fraud-classifier", "MANAGE"),
        Grant("experiment", "1", "MANAGE"),
    }
    assert team_grants(teams, "forecasting", IDS) == {
        Grant("registered_model", "demand-forecast", "MANAGE"),
        Grant("experiment", "2", "MANAGE"),
        Grant("registered_model", "fraud-classifier", "READ"),
        Grant("experiment", "1", "READ"),
    }
    # Nothing of another team's that is not shared.
    assert not any(g.pattern in ("churn", "3") for g in team_grants(teams, "forecasting", IDS))


def test_the_training_role_manages_every_team_model(tmp_path: Path) -> None:
    grants = training_grants(roster(tmp_path), IDS)
    assert {g.pattern for g in grants} == {*IDS, *IDS.values()}
    assert {g.permission for g in grants} == {"MANAGE"}


def test_role_names_round_trip_and_other_roles_are_not_teams() -> None:
    assert team_of_role(role_name("fraud")) == "fraud"
    assert team_of_role("platform-training") is None
    assert team_of_role("__user_3__") is None


def test_changes_add_what_is_missing_update_levels_and_remove_the_rest() -> None:
    keep = Grant("registered_model", "a", "MANAGE")
    current = [
        (10, keep),
        (11, Grant("registered_model", "b", "READ")),  # must become MANAGE
        (12, Grant("experiment", "9", "READ")),  # no longer wanted
        (13, Grant("registered_model", "a", "READ")),  # a second grant on one resource
    ]
    desired = frozenset(
        {keep, Grant("registered_model", "b", "MANAGE"), Grant("experiment", "1", "READ")}
    )
    todo = changes(current, desired)
    assert todo.add == (Grant("experiment", "1", "READ"),)
    assert todo.update == ((11, Grant("registered_model", "b", "MANAGE")),)
    assert sorted(todo.remove) == [12, 13]


def test_no_changes_when_the_role_already_matches() -> None:
    desired = frozenset({Grant("experiment", "1", "READ")})
    todo = changes([(1, Grant("experiment", "1", "READ"))], desired)
    assert not todo
