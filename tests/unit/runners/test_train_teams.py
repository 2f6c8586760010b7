"""`invoke train --runner sagemaker`: a team's model gets the team's role and login, another
model the shared ones (mlplatform.runners.train, with the AWS side replaced by recorders)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlplatform.config import load_environment
from mlplatform.reporting import SilentReporter
from mlplatform.roster import load_roster
from mlplatform.runners import train as train_module
from mlplatform.runners.train import TrainOptions, train
from mlplatform.target import Target


class Recorder:
    """Stands in for job_setup and SageMakerRunner: what the task asked for."""

    def __init__(self) -> None:
        self.teams: list[str | None] = []
        self.secrets: list[str] = []

    def job_setup(self, env: Any, cfn: Any, source: str, digest: Any, team: Any = None) -> str:
        self.teams.append(team)
        return "setup"

    def runner(self, sm: Any, setup: Any, finder: Any) -> Any:
        recorder = self

        class Runner:
            def run(self, request: Any, reporter: Any, wait: bool = True) -> str:
                recorder.secrets.append(request.job_environment()["MLFLOW_CLIENT_SECRET_ID"])
                return "submitted"

        return Runner()


@pytest.mark.parametrize(
    ("teams", "team", "secret"),
    [
        ('[teams.fraud]\nmodels = ["fraud-classifier"]\n', "fraud", "mlflow-users/fraud-training"),
        ('[teams.other]\nmodels = ["churn"]\n', None, "mlflow-client"),
    ],
    ids=["team-model", "no-team"],
)
def test_the_job_runs_as_its_team_or_as_the_shared_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, teams: str, team: str | None, secret: str
) -> None:
    file = tmp_path / "teams.toml"
    file.write_text(teams, encoding="utf-8")
    monkeypatch.setenv("MLPLATFORM_TEAMS", str(file))
    assert load_roster().teams  # the file the task reads
    recorder = Recorder()
    monkeypatch.setattr(train_module, "job_setup", recorder.job_setup)
    monkeypatch.setattr(train_module, "SageMakerRunner", recorder.runner)
    monkeypatch.setattr(Target, "client", lambda self, service: None)
    monkeypatch.setattr(train_module, "_registration_finder", lambda target: None)
    target = Target(load_environment("prod"), None)  # type: ignore[arg-type]
    result = train(target, TrainOptions(runner="sagemaker", wait=False), SilentReporter())
    assert result == "submitted"
    assert recorder.teams == [team]
    assert recorder.secrets == [f"mlp-prod/{secret}"]
