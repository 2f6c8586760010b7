"""The teams file: what it accepts, and the one-line error for each thing it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ConfigError
from mlplatform.roster import load_roster

GOOD = """
[teams.fraud]
members = ["alice", "bob"]
models = ["fraud-classifier"]
shares = { fraud-classifier = ["forecasting"] }

[teams.forecasting]
members = ["carol", "alice"]
models = ["demand-forecast", "demand-forecast-weekly"]
"""


def roster_of(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    file = tmp_path / "teams.toml"
    file.write_text(text, encoding="utf-8")
    return load_roster(file)


def test_the_repositorys_teams_file_loads() -> None:
    roster = load_roster(REPO_ROOT / "teams.toml")
    assert roster.owner("fraud-classifier") == "fraud"


def test_a_roster_answers_who_owns_and_who_reads(tmp_path: Path) -> None:
    roster = roster_of(tmp_path, GOOD)
    assert roster.owner("demand-forecast-weekly") == "forecasting"
    assert roster.owner("unknown") is None
    # The people, and each team's training user.
    assert roster.members() == {"alice", "bob", "carol", "fraud-training", "forecasting-training"}
    assert roster.teams_of("alice") == ["fraud", "forecasting"]
    assert roster.teams_of("fraud-training") == ["fraud"]
    assert roster.training_user("demand-forecast-weekly") == "forecasting-training"
    assert roster.training_user("unknown") is None
    assert roster.readable("forecasting") == ["fraud-classifier"]
    assert roster.readable("fraud") == []


def test_the_path_comes_from_mlplatform_teams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "elsewhere.toml"
    file.write_text('[teams.solo]\nmodels = ["m1"]\n', encoding="utf-8")
    monkeypatch.setenv("MLPLATFORM_TEAMS", str(file))
    assert load_roster().owner("m1") == "solo"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[teams.fraud\n", "not valid TOML"),
        (GOOD.replace('"demand-forecast",', '"fraud-classifier",'), "claimed by teams 'fraud'"),
        (GOOD.replace('["forecasting"]', '["risk"]'), "no team 'risk'"),
        (GOOD.replace('["forecasting"]', '["fraud"]'), "does not share with itself"),
        (GOOD.replace("shares = { fraud-classifier", "shares = { other"), "not one of the team"),
        (GOOD.replace('"alice", "bob"', '"alice", "alice"'), "members names 'alice' twice"),
        (GOOD.replace('"carol"', '"9lives"'), "teams.forecasting.members.0"),
        (GOOD.replace("[teams.fraud]", "[teams.Fraud_Team]"), "teams.Fraud_Team"),
        (GOOD + "\n[teams.ops]\nowners = []\n", "teams.ops.owners: unknown key"),
        ("[people]\n", "people: unknown key"),
        (GOOD.replace('"carol"', '"fraud-training"'), "the training jobs' user of team 'fraud'"),
        ('[teams.ops]\nmembers = "alice"\n', "teams.ops.members"),
    ],
    ids=[
        "malformed",
        "model-claimed-twice",
        "unknown-team",
        "share-with-itself",
        "share-of-a-model-not-owned",
        "member-twice",
        "bad-user-name",
        "bad-team-name",
        "unknown-key",
        "unknown-table",
        "member-named-like-a-training-user",
        "members-not-a-list",
    ],
)
def test_a_bad_teams_file_is_refused_in_one_line_naming_the_file(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        roster_of(tmp_path, text)
    message = str(caught.value)
    assert says in message and "\n" not in message
    assert message.startswith(str(tmp_path / "teams.toml"))


def test_a_missing_teams_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_roster(tmp_path / "none.toml")


def test_asking_for_an_unknown_team_names_the_teams(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no team 'risk'.*fraud, forecasting"):
        roster_of(tmp_path, GOOD).team("risk")
