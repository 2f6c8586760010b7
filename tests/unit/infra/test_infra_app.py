"""infra.app, mlplatform.release.cdk_context: what synth needs, one-line errors when it lacks it."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from conftest import TEST_DIGEST, test_certificate_arn

from infra.app import build_app
from infra.retention import retention_days
from mlplatform.config import Environment, SageMakerSettings, TrainingSettings, load_environments
from mlplatform.errors import ConfigError
from mlplatform.release.cdk_context import CONTEXT_CERTIFICATE_ARN, CONTEXT_IMAGE_DIGEST, resolve


@pytest.fixture(scope="module")
def staging_env() -> Environment:
    return load_environments()["staging"]


def _with_mlflow(env: Environment, **changes: object) -> Environment:
    return env.model_copy(update={"mlflow": env.mlflow.model_copy(update=changes)})


def test_missing_digest_fails_with_what_to_do(staging_env):
    with pytest.raises(
        ConfigError, match=r"\[staging\.mlflow\] image_digest is not set.*-c mlflow_image_digest="
    ):
        resolve(staging_env, certificate_arn=test_certificate_arn(staging_env))


def test_digest_from_config_is_used_without_context(staging_env):
    env = _with_mlflow(staging_env, image_digest=TEST_DIGEST)
    assert (
        resolve(env, certificate_arn=test_certificate_arn(env)).mlflow.image_digest == TEST_DIGEST
    )


def test_context_digest_wins_over_config(staging_env):
    env = _with_mlflow(staging_env, image_digest="sha256:" + "0" * 64)
    resolved = resolve(env, image_digest=TEST_DIGEST, certificate_arn=test_certificate_arn(env))
    assert resolved.mlflow.image_digest == TEST_DIGEST


@pytest.mark.parametrize("bad", ["latest", "sha256:abc", "sha256:" + "G" * 64])
def test_malformed_digest_is_refused(staging_env, bad):
    with pytest.raises(ConfigError, match="mlflow_image_digest"):
        resolve(staging_env, image_digest=bad, certificate_arn=test_certificate_arn(staging_env))


def test_https_needs_a_certificate_unless_http_is_allowed(staging_env):
    with pytest.raises(ConfigError, match=r"certificate_arn is not set.*allow_http = true"):
        resolve(staging_env, image_digest=TEST_DIGEST)
    sandbox = _with_mlflow(staging_env, allow_http=True)
    assert resolve(sandbox, image_digest=TEST_DIGEST).mlflow.certificate_arn is None


def test_malformed_certificate_is_refused(staging_env):
    with pytest.raises(ConfigError, match="certificate_arn"):
        resolve(staging_env, image_digest=TEST_DIGEST, certificate_arn="arn:aws:iam::1:role/x")


@pytest.mark.parametrize("bad", ["latest", "None", "sha256:abc"])
def test_malformed_service_digest_is_refused(staging_env, bad):
    with pytest.raises(ConfigError, match=r"mlflow_service_image_digest: .* or 'none'"):
        resolve(
            staging_env,
            image_digest=TEST_DIGEST,
            certificate_arn=test_certificate_arn(staging_env),
            service_image_digest=bad,
        )


@pytest.mark.parametrize("name", ["training_image_digests", "serving_image_digests"])
def test_released_image_records_are_checked_and_applied(staging_env, name):
    release = {"image_digest": TEST_DIGEST, "certificate_arn": test_certificate_arn(staging_env)}
    with pytest.raises(
        ConfigError,
        match=rf"^context {name}: 'fraud=latest' is not <source name>=sha256:<64 hex>$",
    ):
        resolve(staging_env, **release, **{name: "fraud=latest"})
    three, four = "sha256:" + "3" * 64, "sha256:" + "4" * 64
    resolved = resolve(staging_env, **release, **{name: f"fraud={three},forecast={four}"})
    applied = {
        "training_image_digests": resolved.training.training_image_digests,
        "serving_image_digests": resolved.sagemaker.serving_image_digests,
    }
    wanted = {"fraud": three, "forecast": four}
    assert applied == {key: wanted if key == name else {} for key in applied}


def test_released_images_are_release_state_not_configuration():
    with pytest.raises(ValueError, match="serving_image_digests is set by `invoke deploy`"):
        SageMakerSettings(serving_image_digests={"fraud": "sha256:" + "3" * 64})
    with pytest.raises(ValueError, match="training_image_digests is set by `invoke deploy`"):
        TrainingSettings(training_image_digests={"fraud": "sha256:" + "3" * 64})


def test_resolve_does_not_change_the_loaded_environment(staging_env):
    resolve(
        staging_env, image_digest=TEST_DIGEST, certificate_arn=test_certificate_arn(staging_env)
    )
    assert staging_env.mlflow.image_digest is None


def test_build_app_refuses_an_unknown_env_context():
    app = cdk.App(context={"env": "qa"})
    with pytest.raises(ConfigError, match="no environment 'qa'"):
        build_app(load_environments(), app)


def test_build_app_builds_only_the_selected_environment():
    envs = load_environments()
    env = envs["prod"]
    app = cdk.App(
        context={
            "env": "prod",
            CONTEXT_IMAGE_DIGEST: TEST_DIGEST,
            CONTEXT_CERTIFICATE_ARN: test_certificate_arn(env),
        }
    )
    build_app(envs, app)
    names = sorted(c.node.id for c in app.node.children if isinstance(c, cdk.Stack))
    assert names == [
        f"mlp-prod-{p}" for p in ("data", "mlflow", "monitoring", "network", "sagemaker")
    ]
    data = app.node.find_child("mlp-prod-data")
    assert (
        isinstance(data, cdk.Stack)
        and data.termination_protection is env.database.deletion_protection
    )


def test_unsupported_log_retention_names_the_key():
    with pytest.raises(ConfigError, match=r"staging\.mlflow\.log_retention_days: 45 is not"):
        retention_days(45, "staging.mlflow.log_retention_days")
    assert retention_days(30, "x") is not None
