"""environments.toml loading: the repository's file is valid and bad input fails precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplatform.config import load_environment, load_environments
from mlplatform.errors import ConfigError

MINIMAL = """
[local]
region = "us-east-1"
account = "123456789012"
name_prefix = "mlp-local"
models = { m = { source = "examples/fraud" } }
"""


CERTIFICATE = "arn:aws:acm:eu-west-1:222222222222:certificate/11111111-2222-3333-4444-555555555555"

PROD = """
[prod]
region = "eu-west-1"
account = "222222222222"
name_prefix = "mlp-prod"
models = { m = { source = "examples/fraud" } }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "environments.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_file_defines_three_valid_environments() -> None:
    envs = load_environments()
    assert sorted(envs) == ["local", "prod", "staging"]
    local = envs["local"]
    assert (local.ports.mlflow, local.ports.s3, local.ports.aws, local.ports.database) == (
        5000,
        8333,
        4566,
        3307,
    )
    assert (local.database.engine, local.database.version) == ("mysql", "8.0")
    # Parity: every environment runs the same engine and version as prod.
    prod = envs["prod"]
    assert all(
        (e.database.engine, e.database.version) == (prod.database.engine, prod.database.version)
        for e in envs.values()
    )


def test_repository_file_gives_cloud_environments_a_name_and_prod_a_subscriber() -> None:
    envs = load_environments()
    for name in ("staging", "prod"):
        mlflow = envs[name].mlflow
        assert mlflow.domain_name == f"mlflow.{name}.internal"
        assert mlflow.domain_name in mlflow.allowed_hosts
    assert envs["prod"].monitoring.alarm_emails
    assert all(a.endswith("@example.com") for a in envs["prod"].monitoring.alarm_emails)


def test_prod_without_an_alarm_subscriber_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, PROD)
    with pytest.raises(ConfigError) as err:
        load_environments(path)
    message = str(err.value)
    assert message.startswith(f"{path}: prod.monitoring: alarm_emails is empty")
    assert 'alarm_emails = ["' in message
    assert "\n" not in message
    subscribed = PROD + '[prod.monitoring]\nalarm_emails = ["ml-oncall@example.com"]\n'
    assert load_environment("prod", write(tmp_path, subscribed)).monitoring.alarm_emails == [
        "ml-oncall@example.com"
    ]


def test_domain_name_is_added_to_the_allowed_hosts(tmp_path: Path) -> None:
    text = MINIMAL + (
        f'[local.mlflow]\ncertificate_arn = "{CERTIFICATE}"\ndomain_name = "mlflow.x.internal"\n'
    )
    mlflow = load_environment("local", write(tmp_path, text)).mlflow
    assert mlflow.allowed_hosts == ["localhost", "127.0.0.1"]
    assert mlflow.server_hosts == ["mlflow.x.internal", "localhost", "127.0.0.1"]


def test_defaults_fill_missing_tables(tmp_path: Path) -> None:
    env = load_environment("local", write(tmp_path, MINIMAL))
    assert env.mlflow.workers == 2
    assert env.bucket_name == "mlp-local-artifacts-123456789012-us-east-1"
    assert env.database_secret_name == "mlp-local/mlflow-database"
    assert env.database_master_secret_name == "mlp-local/database-master"


def test_serverless_endpoints_and_fargate_spot_are_switches(tmp_path: Path) -> None:
    text = MINIMAL + (
        "[local.mlflow]\nfargate_spot = true\n"
        "[local.sagemaker]\nserverless_memory_mib = 3072\nchallenger_percent = 0\n"
    )
    env = load_environment("local", write(tmp_path, text))
    assert env.mlflow.fargate_spot is True
    assert (env.sagemaker.serverless_memory_mib, env.sagemaker.serverless_max_concurrency) == (
        3072,
        5,
    )
    assert (
        load_environment("local", write(tmp_path, MINIMAL)).sagemaker.serverless_memory_mib is None
    )


def test_mariadb_is_allowed(tmp_path: Path) -> None:
    text = MINIMAL + '[local.database]\nengine = "mariadb"\nversion = "10.11"\n'
    assert load_environment("local", write(tmp_path, text)).database.engine == "mariadb"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[local.ports]\nmlflow = "5000"\n', "local.ports.mlflow: Input should be a valid integer"),
        ("[local.ports]\nmlflwo = 5000\n", "local.ports.mlflwo: unknown key"),
        ("[local.ports]\nmlflow = 4566\n", "local.ports: ports must be distinct"),
        ("[local.ports]\naws = 8334\n", "used by the S3 store"),
        ('[local.database]\nengine = "postgres"\n', "local.database.engine: Input should be"),
        ('[local.database]\nversion = "5.7"\n', "mysql version '5.7' is not supported"),
        ("[local.mlflow]\nworkers = 0\n", "local.mlflow.workers: Input should be greater than"),
        ("[local.mlflow]\nmin_tasks = 3\nmax_tasks = 2\n", "max_tasks must be >= min_tasks"),
        ('flavour = "x"\n', "local.flavour: unknown key"),
        (
            '[local.mlflow]\nservice_image_digest = "none"\n',
            "local.mlflow: service_image_digest is set by `invoke deploy` (CDK context)",
        ),
        (
            f'[local.mlflow]\ncertificate_arn = "{CERTIFICATE}"\n',
            "local.mlflow.domain_name: required where certificate_arn is set",
        ),
        ('[local.mlflow]\ndomain_name = "Mlflow_Prod"\n', "local.mlflow.domain_name: String"),
        (
            '[local.monitoring]\nalarm_email = "a@example.com"\n',
            "local.monitoring: alarm_email is now alarm_emails, a list",
        ),
        ('[local.monitoring]\nalarm_emails = ["not-an-address"]\n', "alarm_emails.0: String"),
        (
            "[local.mlflow]\nfargate_spot = 1\n",
            "local.mlflow.fargate_spot: Input should be a valid",
        ),
        (
            "[local.sagemaker]\nserverless_memory_mib = 1500\nchallenger_percent = 0\n",
            "local.sagemaker.serverless_memory_mib: Input should be 1024, 2048",
        ),
        (
            "[local.sagemaker]\nserverless_memory_mib = 2048\n",
            "local.sagemaker: a serverless endpoint has one variant: set challenger_percent = 0 "
            "with serverless_memory_mib",
        ),
        (
            "[local.sagemaker]\nserverless_memory_mib = 2048\nchallenger_percent = 0\n"
            "serverless_max_concurrency = 201\n",
            "local.sagemaker.serverless_max_concurrency: Input should be less than or equal to 200",
        ),
    ],
)
def test_bad_values_name_file_key_and_reason(tmp_path: Path, extra: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as err:
        load_environments(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (
            '[local.mlflow]\nservice_image_digest = "none"\n',
            "local.mlflow: service_image_digest is set by `invoke deploy` (CDK context), "
            "not in this file",
        ),
        (
            '[local.sagemaker]\nserving_image_digests = { fraud = "sha256:abc" }\n',
            "local.sagemaker: serving_image_digests is set by `invoke deploy` (CDK context), "
            "not in this file; pin an image with serving_image",
        ),
    ],
)
def test_release_state_in_the_file_is_refused_with_the_whole_reason(
    tmp_path: Path, extra: str, reason: str
) -> None:
    """The whole line, hint or no hint (`invoke mutate` found the tail untested)."""
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as err:
        load_environments(path)
    assert str(err.value) == f"{path}: {reason}"


def test_an_environment_that_is_not_a_table_is_named_with_its_type(tmp_path: Path) -> None:
    path = write(tmp_path, "local = 3\n")
    with pytest.raises(ConfigError) as err:
        load_environments(path)
    assert str(err.value) == f"{path}: local: must be a table, got int"


def test_broken_toml_reports_the_position(tmp_path: Path) -> None:
    path = write(tmp_path, "[local\nregion = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 1"):
        load_environments(path)


def test_unknown_environment_and_missing_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="qa: unknown environment"):
        load_environments(write(tmp_path, MINIMAL + "[qa]\nregion = 'x'\n"))
    # The message names the file that was read, not the default one.
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as caught:
        load_environment("prod", path)
    assert str(caught.value) == f"{path}: no [prod] table; defined: ['local']"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_environments(tmp_path / "nope.toml")


def test_env_variable_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLATFORM_CONFIG", str(write(tmp_path, MINIMAL)))
    assert sorted(load_environments()) == ["local"]
