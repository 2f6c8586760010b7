"""Bad input through the task layer: one line on stderr, a non-zero exit, nothing started."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from tests.cli import kit


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"MLPLATFORM_HOME": str(tmp_path / "state")}


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_runtime(home: dict[str, str], tmp_path: Path) -> None:
    line = one_line_error(kit("up", "--runtime", "kubernetes", env=home))
    assert line == "error: unknown runtime 'kubernetes'; choose one of auto, native, compose"
    assert not (tmp_path / "state").exists()


def test_broken_environments_toml(home: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "environments.toml"
    bad.write_text('[local]\nregion = "us-east-1"\naccount = "12"\n', encoding="utf-8")
    line = one_line_error(kit("up", env={**home, "MLPLATFORM_CONFIG": str(bad)}))
    assert line.startswith(f"error: {bad}: local.account: String should match pattern")
    assert not (tmp_path / "state").exists()


def test_down_when_nothing_is_up_is_a_clean_no_op(home: dict[str, str]) -> None:
    result = kit("down", env=home)
    assert result.returncode == 0, result.stderr
    assert "nothing was running" in result.stdout


def test_status_json_when_nothing_is_up(home: dict[str, str]) -> None:
    result = kit("status", "--json", env=home)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["runtime"] == "native"
    assert set(status["services"]) >= {"s3", "aws", "mlflow"}
    assert all(
        s["healthy"] is False and s["url"].startswith(("http://", "mysql://"))
        for s in status["services"].values()
    )


def test_env_before_up(home: dict[str, str]) -> None:
    line = one_line_error(kit("env", env=home))
    assert "run `invoke up` first" in line


def test_logs_of_unknown_service(home: dict[str, str]) -> None:
    line = one_line_error(kit("logs", "--service", "redis", env=home))
    assert "unknown service 'redis'" in line


def test_deploy_infra_without_an_image_digest_is_one_line(home: dict[str, str]) -> None:
    line = one_line_error(kit("deploy-infra", "--env", "prod", env=home))
    assert line == (
        "error: [prod.mlflow] image_digest is not set: push the MLflow image and set it, or "
        "pass -c mlflow_image_digest=sha256:<digest>"
    )


def test_deploy_infra_refuses_synths_placeholder_digest_before_reading_aws(
    home: dict[str, str],
) -> None:
    placeholder = "sha256:" + "0" * 64
    certificate = (
        "arn:aws:acm:eu-west-1:222222222222:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    args = ("--env", "prod", "--image-digest", placeholder, "--certificate-arn", certificate)
    line = one_line_error(kit("deploy-infra", *args, env=home))
    assert line == (
        "error: the image digest is a placeholder (for looking at a synth only); deploy a real one"
    )


def test_mutate_of_an_unknown_module_is_one_line(home: dict[str, str]) -> None:
    line = one_line_error(kit("mutate", "--module", "gates", env=home))
    assert line == (
        "error: unknown module 'gates'; choose from promotion, archive, gate, chain, config"
    )


def test_predict_bad_input_is_one_line(home: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "request.json"
    assert one_line_error(kit("predict", "--input", str(missing), env=home)) == (
        f"error: cannot read the request {missing}: No such file or directory"
    )
    missing.write_text("  \n")
    assert one_line_error(kit("predict", "--input", str(missing), env=home)) == (
        "error: the request body is empty; pass --input FILE (or - for stdin)"
    )
    missing.write_text('{"inputs": [[1]]}')
    # Port 9 (discard): nothing listens there on these machines.
    assert one_line_error(kit("predict", "--input", str(missing), "--port", "9", env=home)) == (
        "error: nothing answers at http://127.0.0.1:9/invocations; start the endpoint with "
        "`invoke serve` (or pass --port)"
    )
    assert (
        one_line_error(kit("predict", "--input", str(missing), "--variant", "champion", env=home))
        == "error: --variant is for a cloud endpoint; `invoke serve` has none"
    )


@pytest.mark.parametrize("name", ["synth", "deploy", "parity", "predict", "traffic", "destroy"])
def test_help_after_a_task_shows_its_options(name: str, home: dict[str, str]) -> None:
    # Invoke would take `--help` as the value of an argument without a default (`--env`).
    result = kit(name, "--help", env=home)
    assert result.returncode == 0, result.stderr
    assert "--env=STRING" in result.stdout and "error" not in result.stderr


@pytest.mark.parametrize(
    ("args", "flag"), [(("synth",), "--env"), (("traffic", "--env", "prod"), "--challenger")]
)
def test_a_required_flag_left_out_is_one_line_naming_it(
    args: tuple[str, ...], flag: str, home: dict[str, str]
) -> None:
    assert one_line_error(kit(*args, env=home)) == f"error: {flag} is required"


def _tasks_with(parameter: str) -> list[str]:
    import tasks

    found = []
    for task in tasks.ns.tasks.values():
        if parameter in inspect.signature(task.body).parameters:
            found.append(task.name)
    return sorted(found)


# What each task needs besides --env to get as far as reading the environment.
_REQUIRED = {
    "traffic": ("--challenger", "5"),
    "reproduce": ("--version", "1"),
    "grant": ("--user", "ann", "--model", "m"),
    "user-add": ("--name", "ann"),
    "user-remove": ("--name", "ann"),
}


@pytest.mark.parametrize("name", _tasks_with("env"))
def test_every_task_names_an_unknown_environment_in_one_line(
    name: str, home: dict[str, str]
) -> None:
    line = one_line_error(kit(name, "--env", "nope", *_REQUIRED.get(name, ()), env=home))
    assert line.startswith("error: ") and "nope" in line, line


@pytest.mark.parametrize(
    ("args", "flag"), [(("serve", "--port", "abc"), "port"), (("mutate", "--jobs", "x"), "jobs")]
)
def test_a_malformed_number_is_one_line_not_a_traceback(
    args: tuple[str, ...], flag: str, home: dict[str, str]
) -> None:
    assert one_line_error(kit(*args, env=home)).startswith(f"error: --{flag} takes a whole number")


def test_a_cloud_task_without_credentials_or_endpoint_is_one_line(home: dict[str, str]) -> None:
    """botocore's own errors, raised below the library's wrapping, still end in one line."""
    line = one_line_error(kit("endpoints", "--env", "prod", env=home))
    assert line == (
        "error: AWS: Unable to locate credentials (AWS credentials for a real account; for an "
        'emulated one, eval "$(./kit env --env ENV)")'
    )
    unreachable = {
        **home,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLEONLY00000",
        "AWS_SECRET_ACCESS_KEY": "example-only",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }
    line = one_line_error(kit("endpoints", "--env", "prod", env=unreachable))
    assert line.startswith("error: AWS: Could not connect to the endpoint URL")
    assert line.endswith("(is the emulation running? ./kit emulate --env ENV --account)")


def test_an_emulated_account_on_a_local_stack_port_is_refused(
    home: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "environments.toml"
    text = (Path(__file__).parents[2] / "environments.toml").read_text(encoding="utf-8")
    config.write_text(text.replace("aws = 5101", "aws = 4566"), encoding="utf-8")
    result = kit(
        "emulate", "--env", "prod", "--account", env={**home, "MLPLATFORM_CONFIG": str(config)}
    )
    assert one_line_error(result) == (
        "error: [prod.ports] aws = 4566 is a port of the local stack; give prod's emulated "
        "account a port of its own"
    )
    assert not (tmp_path / "state").exists()


def test_rotating_the_local_admin_is_refused(home: dict[str, str]) -> None:
    assert one_line_error(kit("rotate-admin", "--env", "local", env=home)) == (
        "error: the local stack's admin password is in its state folder, not rotated here; "
        "use --env staging or prod"
    )


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("two", "error: --instance-count expects a number, got 'two'"),
        # Refused before anything reads the stack: the native runner trains on one machine.
        ("2", "error: the native runner trains on one machine, and this job asks for 2 "
              "instances: train it with --runner sagemaker (or --instance-count 1)"),
    ],
)  # fmt: skip
def test_train_instance_count_bad_input_is_one_line(
    home: dict[str, str], count: str, message: str
) -> None:
    assert one_line_error(kit("train", "--instance-count", count, env=home)) == message
