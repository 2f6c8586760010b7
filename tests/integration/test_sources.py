"""Bring your own training code: a second source through the whole local path, and the contract.

On the session's native stack, with a configuration of two models: the kit's fraud example and
examples/forecast (LightGBM, its own lock and data generator, MLflow's lightgbm flavor). Sources
that break the contract are small folders written here; they reuse the fraud example's lock, so
their environment is the one already made.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlplatform.sources.environment import environments_root
from tests.cli import REPO
from tests.integration.conftest import FORECAST, FRAUD, Stack
from tests.integration.test_serving import MODES, server_pids, stop_serve
from tests.integration.test_training import admin_of, one_error_line

pytestmark = pytest.mark.integration
SERVE_PORT = 18093


@pytest.fixture
def admin(two_models: Stack, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    return admin_of(two_models, monkeypatch)


def versions(client: MlflowClient, model: str) -> set[str]:
    return {v.version for v in client.search_model_versions(f"name='{model}'")}


def train(stack: Stack, *args: str) -> dict:
    return json.loads(stack.kit("train", "--json", *args, timeout=900).stdout)


def source_python(model_tags: dict[str, str]) -> Path:
    """The interpreter of the environment the run's lock names (made by the kit)."""
    found = [
        p
        for p in environments_root().glob("*/.mlp-complete")
        if p.read_text().strip() == model_tags["mlp.lock.sha256"]
    ]
    assert found, "no environment of the run's lock"
    return found[0].parent / "bin" / "python"


@pytest.fixture(scope="module")
def forecast(two_models: Stack) -> dict:
    """The forecast model trained once on the native stack: the job's result, and the aliases
    both models had before it."""
    with pytest.MonkeyPatch.context() as patch:
        admin = admin_of(two_models, patch)
        before = {
            "fraud_challenger": _alias(admin, FRAUD, "challenger"),
            "forecast_champion": _alias(admin, FORECAST, "champion"),
        }
    two_models.kit("data", "--model", FORECAST, timeout=900)
    return {**before, "result": train(two_models, "--model", FORECAST)}


def test_a_second_source_trains_and_gates_without_a_kit_change(
    two_models: Stack, admin: MlflowClient, forecast: dict
) -> None:
    stack, result = two_models, forecast["result"]
    # Two models: a task that takes one must be told which.
    line = one_error_line(stack.kit("train", check=False))
    assert line == (f"error: environment local has 2 models ({FRAUD}, {FORECAST}): pass --model")
    run = admin.get_run(result["run_id"])
    assert run.data.tags["mlp.source"] == "examples/forecast"
    lock = (REPO / "examples" / "forecast" / "requirements.txt").read_bytes()
    assert run.data.tags["mlp.lock.sha256"] == hashlib.sha256(lock).hexdigest()
    assert run.data.metrics["val_wape"] < run.data.metrics["baseline_wape"]
    version = admin.get_model_version(FORECAST, result["model_version"])
    assert admin.get_model_version_by_alias(FORECAST, "challenger").version == version.version

    decision = json.loads(stack.kit("champion", "--model", FORECAST, "--json").stdout)
    assert decision["metric"] == "val_wape" and decision["model_version"] == version.version
    if forecast["forecast_champion"] is None:
        assert decision["promoted"] and decision["reason"] == "no champion yet"
    else:  # lower is better for an error: the gate compares the other way round
        assert decision["reason"].startswith("val_wape ") and " - 0" in decision["reason"]
    # The other model's aliases are its own.
    assert _alias(admin, FRAUD, "challenger") == forecast["fraud_challenger"]


@pytest.mark.parametrize("mode", MODES)
def test_the_second_source_is_served_in_its_own_environment(
    two_models: Stack, forecast: dict, mode: str, tmp_path: Path
) -> None:
    """On this host in the source's environment, and (container lane) in the source's own
    serving image, which installs its lock and the OpenMP runtime LightGBM loads: the endpoint
    answers what the model loaded in the source's environment answers."""
    stack, version = two_models, forecast["result"]["model_version"]
    rows = validation_rows()
    command = [*_kit_argv(), "serve", "--model", FORECAST, "--version", version,
               "--port", str(SERVE_PORT)]  # fmt: skip
    # Its output goes to a file: a pipe nobody reads can fill and block the kit mid-stop.
    log = tmp_path / "serve.log"
    with open(log, "w", encoding="utf-8") as out:
        serving = subprocess.Popen(
            [*command, "--container"] if mode == "container" else command,
            cwd=REPO,
            env=_kit_env(stack),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    groups: set[int] = set()
    try:
        ready = f"serving {FORECAST} version {version} at http://127.0.0.1:{SERVE_PORT}"
        _wait_for(serving, log, ready, timeout=1800 if mode == "container" else 180)
        groups = {os.getpgid(pid) for pid in server_pids(SERVE_PORT)}
        answer = requests.post(
            f"http://127.0.0.1:{SERVE_PORT}/invocations",
            json={"dataframe_records": rows},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        served = answer.json()["predictions"]
    finally:
        # As Ctrl-C; killed after a grace period, with what is left of the server's groups.
        stop_serve(serving, groups)
        if mode == "container":  # a failed run must not leave the container on the port
            subprocess.run(["podman", "rm", "--force", f"mlplatform-serve-{SERVE_PORT}"],
                           capture_output=True, check=False)  # fmt: skip
    lock = hashlib.sha256((REPO / "examples" / "forecast" / "requirements.txt").read_bytes())
    tags = {"mlp.lock.sha256": lock.hexdigest()}
    loaded = predict_in_source_environment(stack, tags, FORECAST, version, rows)
    assert served == pytest.approx(loaded, rel=1e-9)


def _alias(client: MlflowClient, model: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def _kit_argv() -> list[str]:
    return [sys.executable, "-m", "invoke"]


def _kit_env(stack: Stack) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    return {**inherited, **stack.env}


def _wait_for(process: subprocess.Popen[str], log: Path, ready: str, timeout: float) -> None:
    """Until the kit says it serves (its own server answered /ping), not until anything on
    the port answers: a server left there by another run must not stand in for this one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8")
        if ready in " ".join(text.split()):  # the console may wrap the line
            return
        if process.poll() is not None:
            raise AssertionError(f"serve ended: {text[-2000:]}")
        time.sleep(0.5)
    raise AssertionError(f"serve did not say {ready!r} in {timeout} s")


def validation_rows() -> list[dict]:
    """Five rows of the forecast's features, from its own generator (history as floats)."""
    from forecast_model.data import FEATURES, generate, split

    _, validation = split(generate(stores=2, families=2, days=120, seed=3), validation_weeks=2)
    rows = validation[list(FEATURES)].head(5)
    return json.loads(rows.astype({c: "float64" for c in ("lag_7", "lag_14", "rolling_mean_7")})
                      .to_json(orient="records"))  # fmt: skip


def predict_in_source_environment(
    stack: Stack, tags: dict[str, str], model: str, version: str, rows: list[dict]
) -> list[float]:
    """The registered model's predictions, loaded with pyfunc in the source's environment."""
    script = textwrap.dedent(
        """
        import json, sys
        import mlflow.pyfunc, pandas
        rows = json.loads(sys.stdin.read())
        model = mlflow.pyfunc.load_model(sys.argv[1])
        print(json.dumps([float(v) for v in model.predict(pandas.DataFrame(rows))]))
        """
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))},
        **{k: v for k, v in stack.client_env().items() if k.startswith("MLFLOW_")},
    }
    done = subprocess.run(
        [str(source_python(tags)), "-c", script, f"models:/{model}/{version}"],
        input=json.dumps(rows),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- sources that break the contract ---------------------------------------------------------


def _source(folder: Path, train_py: str, channels: str = '["train", "validation"]') -> Path:
    """A minimal source in `folder`, locked with the fraud example's lock."""
    folder.mkdir(parents=True)
    (folder / "source.toml").write_text(
        f'entry_point = "train.py"\nchannels = {channels}\n[gate]\nmetric = "average_precision"\n',
        encoding="utf-8",
    )
    shutil.copy(REPO / "examples" / "fraud" / "requirements.txt", folder / "requirements.txt")
    (folder / "train.py").write_text(textwrap.dedent(train_py), encoding="utf-8")
    return folder


NO_MODEL = """
    import mlflow, mlp_training

    def train(job):
        job.channel("train")
        with job.start_run():
            mlflow.log_metric("average_precision", 0.5)

    raise SystemExit(mlp_training.run(train))
"""
OWN_FAILURE = """
    import os, pathlib, sys
    failure = pathlib.Path(os.environ["SM_PREFIX"]) / "output" / "failure"
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text("the team's own reason")
    sys.exit(1)
"""
NO_RESULT = """
    print("trained, but not through mlp_training.run")
"""


@pytest.mark.parametrize(
    ("code", "channels", "reason"),
    [
        (NO_MODEL, None, "failed: the job registered no model: call job.log_model"),
        (OWN_FAILURE, None, "failed: the team's own reason"),
        (NO_RESULT, None, "ended without a result: its entry point must finish through"),
        (NO_MODEL, '["train", "validation", "holdout"]', "input channel 'holdout' is empty"),
    ],
    ids=["no-model-written", "failure-file", "no-result", "missing-channel"],
)
def test_a_source_that_breaks_the_contract_fails_in_one_line_and_registers_nothing(
    two_models: Stack,
    admin: MlflowClient,
    tmp_path: Path,
    code: str,
    channels: str | None,
    reason: str,
) -> None:
    stack = two_models
    stack.kit("data", "--model", FRAUD)
    before = versions(admin, FRAUD)
    folder = _source(tmp_path / "team", code, *([channels] if channels else []))
    line = one_error_line(
        stack.kit("train", "--model", FRAUD, "--source", str(folder), check=False, timeout=600)
    )
    assert reason in line
    assert versions(admin, FRAUD) == before


def test_a_changed_requirement_makes_a_new_environment_and_lock(
    two_models: Stack, admin: MlflowClient, tmp_path: Path
) -> None:
    stack = two_models
    folder = tmp_path / "fraud"
    shutil.copytree(
        REPO / "examples" / "fraud", folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    before = json.loads(stack.kit("train", "--json", "--model", FRAUD, "--source", str(folder),
                                  "--set", "n_estimators=5", timeout=900).stdout)  # fmt: skip
    # One more (small, pure-Python) requirement: a new lock, so a new environment and lineage.
    with open(folder / "requirements.in", "a", encoding="utf-8") as spec:
        spec.write("tomli-w>=1.0\n")
    stack.kit("lock", "--source", str(folder), timeout=600)
    assert "tomli-w==" in (folder / "requirements.txt").read_text()
    after = json.loads(stack.kit("train", "--json", "--model", FRAUD, "--source", str(folder),
                                 "--set", "n_estimators=5", timeout=900).stdout)  # fmt: skip
    old, new = (admin.get_run(r["run_id"]).data.tags for r in (before, after))
    assert old["mlp.lock.sha256"] != new["mlp.lock.sha256"]
    assert source_python(old) != source_python(new)
    probe = subprocess.run(
        [str(source_python(new)), "-c", "import tomli_w"], capture_output=True, check=False
    )
    assert probe.returncode == 0 and old["mlp.source.sha256"] != new["mlp.source.sha256"]
