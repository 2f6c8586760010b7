"""The teams file (teams.toml): each team's members, the models it owns, whom it shares them with.

Each team also has a training user, `<team>-training`, that its SageMaker jobs log in as (its
login: a secret CDK generates in the cloud, `team-sync` locally); no member may take that name.

    >>> roster = load_roster()
    >>> roster.owner("fraud-classifier")
    'fraud'

Validated at load like environments.toml: an unknown key, a bad name, a model two teams claim or
a share with a team that does not exist raises ConfigError naming the file, the key and the
reason. The path comes from the argument, else MLPLATFORM_TEAMS, else teams.toml at the
repository root. The file holds names only; passwords live in each environment's Secrets Manager.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlplatform.config import REPO_ROOT, ModelName, read_toml
from mlplatform.errors import ConfigError
from mlplatform.names import team_training_user

__all__ = ["Roster", "Team", "TeamName", "UserName", "load_roster", "roster_path"]

# Team names end up in MLflow role names and, in the cloud, in IAM role and secret names.
TeamName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
# The rule MLflow user names of the kit follow (the admin's and the client's too).
UserName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{2,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Team(_Strict):
    """One team: its members (MLflow users), the models it owns, and which teams read which."""

    members: list[UserName] = []
    models: list[ModelName] = []
    # model (one of `models`) -> teams that may read it: its versions, runs and metrics.
    shares: dict[ModelName, list[TeamName]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Team:
        for field in ("members", "models"):
            values = getattr(self, field)
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{field} names {repeated[0]!r} twice")
        foreign = sorted(set(self.shares) - set(self.models))
        if foreign:
            raise ValueError(f"shares {foreign[0]!r}, which is not one of the team's models")
        return self


class Roster(_Strict):
    """Every team of the platform, validated as a whole (one owner per model)."""

    teams: dict[TeamName, Team] = {}

    @model_validator(mode="after")
    def _one_owner_per_model(self) -> Roster:
        owners: dict[str, str] = {}
        for name, team in self.teams.items():
            for model in team.models:
                if model in owners:
                    raise ValueError(
                        f"model {model!r} is claimed by teams {owners[model]!r} and {name!r}"
                    )
                owners[model] = name
            for member in team.members:
                team_of = next((t for t in self.teams if member == team_training_user(t)), None)
                if team_of is not None:
                    raise ValueError(
                        f"{name}.members: {member!r} is the training jobs' user of team {team_of!r}"
                    )
            for model, readers in team.shares.items():
                unknown = sorted(set(readers) - set(self.teams))
                if unknown:
                    raise ValueError(f"{name}.shares.{model}: no team {unknown[0]!r}")
                if name in readers:
                    raise ValueError(f"{name}.shares.{model}: a team does not share with itself")
        return self

    def team(self, name: str) -> Team:
        """The team `name`; ConfigError naming the teams there are."""
        if name not in self.teams:
            raise ConfigError(f"no team {name!r} in the teams file; teams: {self._names()}")
        return self.teams[name]

    def owner(self, model: str) -> str | None:
        """The team that owns `model`, or None."""
        return next((name for name, team in self.teams.items() if model in team.models), None)

    def members(self) -> set[str]:
        """Every user of some team: its people, and each team's training user."""
        people = {user for team in self.teams.values() for user in team.members}
        return people | {team_training_user(name) for name in self.teams}

    def teams_of(self, user: str) -> list[str]:
        """The teams `user` belongs to, in file order (a training user: its own team)."""
        return [
            name
            for name, team in self.teams.items()
            if user in team.members or user == team_training_user(name)
        ]

    def training_user(self, model: str) -> str | None:
        """The MLflow user training jobs of `model` log in as, when a team owns it."""
        owner = self.owner(model)
        return None if owner is None else team_training_user(owner)

    def readable(self, team: str) -> list[str]:
        """The models other teams share with `team`."""
        return [
            model
            for other in self.teams.values()
            for model, readers in other.shares.items()
            if team in readers
        ]

    def _names(self) -> str:
        return ", ".join(self.teams) or "none"


def roster_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the teams file is read from: the argument, MLPLATFORM_TEAMS, or the repo root."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("MLPLATFORM_TEAMS") or REPO_ROOT / "teams.toml")


def load_roster(path: str | os.PathLike[str] | None = None) -> Roster:
    """Read and validate the teams file; ConfigError (file, key, reason) on the first problem."""
    file = roster_path(path)
    raw = read_toml(file, "MLPLATFORM_TEAMS")
    try:
        return Roster.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or "teams"
        message = re.sub(r"^Value error, ", "", err["msg"])
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{file}: {key}: {message}") from exc
