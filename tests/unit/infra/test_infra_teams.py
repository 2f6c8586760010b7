"""Per-team training identities in the SageMaker stack, from a teams file: one role and one
generated MLflow login per team with a model the environment configures.

The calls a team's job makes under its role are evaluated in test_infra_emulated_deploy.py
(test_a_teams_training_job_runs_under_the_teams_role_and_login_only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Synthesized, synthesize

from mlplatform.config import load_environment
from mlplatform.roster import load_roster

TEAMS = """
[teams.fraud]
members = ["alice"]
models = ["fraud-classifier"]

[teams.risk-ops]
members = ["bob"]
models = ["chargeback-model"]

[teams.idle]
members = ["carol"]
models = ["not-in-prod"]
"""


@pytest.fixture(scope="module")
def teams_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    folder = tmp_path_factory.mktemp("teams-synth")
    (folder / "teams.toml").write_text(TEAMS, encoding="utf-8")
    env = load_environment("prod").model_dump()
    env["models"]["chargeback-model"] = {"source": "examples/fraud"}
    settings = type(load_environment("prod")).model_validate(env)
    return synthesize(settings, folder / "out", roster=load_roster(folder / "teams.toml"))


def _team_policies(synth: Synthesized) -> dict[str, dict[str, dict]]:
    """Each team policy's statements by Sid, keyed by the team's construct (TeamFraud...)."""
    found = {}
    for logical, policy in synth.template("sagemaker").find_resources("AWS::IAM::Policy").items():
        if logical.startswith("Team"):
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            found[logical.split("Policy")[0]] = {s["Sid"]: s for s in statements}
    return found


def test_each_team_with_a_model_here_gets_a_role_and_none_other(teams_synth: Synthesized) -> None:
    template = teams_synth.template("sagemaker")
    names = sorted(
        r["Properties"]["RoleName"] for r in template.find_resources("AWS::IAM::Role").values()
    )
    assert names == [
        "mlp-prod-sagemaker-endpoint",
        "mlp-prod-sagemaker-execution",
        "mlp-prod-team-fraud-training",
        "mlp-prod-team-risk-ops-training",
    ]
    outputs = teams_synth.template_json("sagemaker")["Outputs"]
    assert {"TeamRoleArnFraud", "TeamRoleArnRiskOps"} <= set(outputs)
    assert not any("Idle" in key for key in outputs)


def test_a_team_role_reaches_its_own_models_data_jobs_and_login_only(
    teams_synth: Synthesized,
) -> None:
    policies = _team_policies(teams_synth)
    fraud = json.dumps(policies["TeamFraud"])
    assert "datasets/fraud-classifier/*" in fraud
    assert "training-output/fraud-classifier*" in fraud
    checkpoints = load_environment("prod").training.checkpoint_prefix
    assert f"{checkpoints}/fraud-classifier/*" in fraud
    assert "chargeback" not in fraud and "datasets/*" not in fraud
    assert "log-stream:fraud-classifier*" in fraud
    secret = policies["TeamFraud"]["MlflowClientSecret"]["Resource"]
    assert secret == {"Ref": next(k for k in _secrets(teams_synth) if k.startswith("TeamFraud"))}
    assert "mlflow-client" not in fraud


def _secrets(synth: Synthesized) -> dict[str, dict]:
    return synth.template("sagemaker").find_resources("AWS::SecretsManager::Secret")


def test_each_team_login_is_generated_retained_and_tagged(teams_synth: Synthesized) -> None:
    secrets = {s["Properties"]["Name"]: s for s in _secrets(teams_synth).values()}
    assert set(secrets) == {
        "mlp-prod/mlflow-users/fraud-training",
        "mlp-prod/mlflow-users/risk-ops-training",
    }
    fraud = secrets["mlp-prod/mlflow-users/fraud-training"]
    generate = fraud["Properties"]["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {"username": "fraud-training"}
    assert generate["GenerateStringKey"] == "password" and generate["PasswordLength"] >= 32
    assert fraud["DeletionPolicy"] == "Retain"
    assert {"Key": "mlp:managed-by", "Value": "cdk"} in fraud["Properties"]["Tags"]
    assert "SecretString" not in fraud["Properties"]


def test_the_repositorys_teams_file_shapes_every_environment(each_env: Synthesized) -> None:
    """Every environment configures fraud-classifier, which teams.toml gives the fraud team."""
    outputs = each_env.template_json("sagemaker")["Outputs"]
    assert "TeamRoleArnFraud" in outputs
    assert Path(__file__).parents[3].joinpath("teams.toml").exists()
