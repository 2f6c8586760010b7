"""`invoke reproduce` on the real local stack: a version rebuilt from its lineage, and refusals.

The fraud example is committed to a git repository of its own (a clean tree, as a team's repo
is), trained from there with a hyperparameter override, and rebuilt: the report must say
identical for every metric and for the predictions, register nothing, and leave its verdict on
the version. What cannot be had again is refused in one line: a version trained from a dirty
tree, a channel whose bytes changed after training, a version that does not exist.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.cli import REPO
from tests.integration.conftest import FORECAST, FRAUD, Stack
from tests.integration.test_sources import versions
from tests.integration.test_training import BUCKET, admin_of, one_error_line

pytestmark = pytest.mark.integration


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=team", "-c", "user.email=team@example.org", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def committed(example: str, root: Path) -> Path:
    """An example of the kit's as the only folder of a fresh, clean git repository."""
    shutil.copytree(
        REPO / "examples" / example, root / example, ignore=shutil.ignore_patterns("__pycache__")
    )
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", f"{example} model")
    return root / example


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return committed("fraud", tmp_path_factory.mktemp("team-repo"))


@pytest.fixture
def admin(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    return admin_of(stack, monkeypatch)


def train(stack: Stack, source: Path, model: str = FRAUD) -> dict[str, Any]:
    args = ["train", "--json", "--model", model, "--source", str(source)]
    return json.loads(stack.kit(*args, "--set", "n_estimators=40", timeout=900).stdout)


@pytest.fixture(scope="module")
def trained(stack: Stack, source: Path) -> dict[str, Any]:
    stack.kit("data", timeout=900)
    return train(stack, source)


def reproduce(stack: Stack, version: str, check: bool = True, model: str = FRAUD):  # type: ignore[no-untyped-def]
    args = ["reproduce", "--model", model, "--version", version]
    return stack.kit(*args, "--json", check=check, timeout=900)


def test_a_version_is_rebuilt_identically_from_its_recorded_lineage(
    stack: Stack, admin: MlflowClient, trained: dict[str, Any]
) -> None:
    version = trained["model_version"]
    before = versions(admin, FRAUD)
    report = json.loads(reproduce(stack, version).stdout)
    assert report["verdict"] == "identical", report
    names = {item["name"]: item["verdict"] for item in report["items"]}
    assert set(names.values()) == {"identical"}
    assert {"metric average_precision", "metric roc_auc", "mlp.lock.sha256"} <= names.keys()
    assert {"mlp.data.train.sha256", "mlp.data.validation.sha256"} <= names.keys()
    assert any(n.startswith("predictions on validation (") for n in names)
    # A run of its own, in the reproductions experiment; no version registered.
    assert versions(admin, FRAUD) == before
    recorded = admin.get_run(trained["run_id"]).data
    rebuilt = admin.get_run(report["rebuilt_run_id"])
    assert admin.get_experiment(rebuilt.info.experiment_id).name == f"{FRAUD}-reproductions"
    # The recorded hyperparameters went in, the override and the defaults alike.
    hyper = recorded.tags["mlp.hyperparameters"].split(",")
    assert {"n_estimators", "seed", "learning_rate"} <= set(hyper)
    assert {k: rebuilt.data.params[k] for k in hyper} == {k: recorded.params[k] for k in hyper}
    assert rebuilt.data.params["n_estimators"] == "40"
    assert rebuilt.data.tags["mlp.git.commit"] == recorded.tags["mlp.git.commit"]
    assert rebuilt.data.tags["mlp.reproduces"] == f"{FRAUD}/{version}"
    # The registry shows the verdict on the version.
    tags = admin.get_model_version(FRAUD, version).tags
    assert tags["mlp.reproduced.verdict"] == "identical"
    assert tags["mlp.reproduced.run"] == report["rebuilt_run_id"]


def test_the_forecast_example_reproduces_identically_too(two_models: Stack, tmp_path: Path) -> None:
    """LightGBM, one thread, row-wise, deterministic: the second example rebuilds bit for bit."""
    folder = committed("forecast", tmp_path / "forecast-repo")
    two_models.kit("data", "--model", FORECAST, timeout=900)
    trained = train(two_models, folder, FORECAST)
    report = json.loads(reproduce(two_models, trained["model_version"], model=FORECAST).stdout)
    assert report["verdict"] == "identical", report
    assert any(i["name"].startswith("predictions on validation (") for i in report["items"])
    assert any(i["name"].startswith("metric val_wape") for i in report["items"])


@pytest.fixture
def extra_file(stack: Stack, trained: dict[str, Any]) -> Iterator[Any]:
    """One more file in the train channel after training; removed again afterwards."""
    s3 = stack.s3()
    key = f"datasets/{FRAUD}/train/late-arrival.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"amount,label\n1.0,0\n")
    yield
    s3.delete_object(Bucket=BUCKET, Key=key)


def test_a_channel_changed_after_training_is_named(
    stack: Stack, trained: dict[str, Any], extra_file: None
) -> None:
    line = one_error_line(reproduce(stack, trained["model_version"], check=False))
    assert "channel 'train' no longer matches the sha256" in line
    assert "its data changed after training" in line


def test_a_version_trained_from_a_dirty_tree_is_refused(
    stack: Stack, admin: MlflowClient, source: Path, trained: dict[str, Any]
) -> None:
    edited = source / "fraud_model" / "evaluate.py"
    original = edited.read_text(encoding="utf-8")
    edited.write_text(original + "\n# an uncommitted edit\n", encoding="utf-8")
    try:
        dirty = train(stack, source)
    finally:
        edited.write_text(original, encoding="utf-8")
    before = reproduction_runs(admin)
    line = one_error_line(reproduce(stack, dirty["model_version"], check=False))
    assert f"{FRAUD} version {dirty['model_version']} was trained from a work tree" in line
    assert "uncommitted changes" in line
    assert reproduction_runs(admin) == before  # refused before anything was trained


def reproduction_runs(admin: MlflowClient) -> int:
    """How many runs the reproductions of the fraud model have made (their experiment's)."""
    experiment = admin.get_experiment_by_name(f"{FRAUD}-reproductions")
    if experiment is None:
        return 0
    return len(admin.search_runs([experiment.experiment_id], max_results=1000))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", FRAUD, "--version", "999"], f"{FRAUD} has no version '999'"),
        (["--model", "nope", "--version", "1"], "nope"),
        (["--model", FRAUD, "--version", "1", "--runner", "sagemaker"], "native runner so far"),
        (["--model", FRAUD, "--version", "1", "--env", "prod"], "local environment so far"),
    ],
)
def test_bad_input_is_one_line(stack: Stack, args: list[str], says: str) -> None:
    assert says in one_error_line(stack.kit("reproduce", *args, check=False))


def test_sigterm_stops_the_rebuild_and_leaves_no_worktree_or_job(
    stack: Stack, source: Path, trained: dict[str, Any]
) -> None:
    """SIGTERM to the kit alone, as a process manager sends it, while the job trains."""
    logs = Path(stack.env["MLPLATFORM_HOME"]) / "logs" / "training"
    before = set(logs.glob("*-repro-*.log"))
    args = ["reproduce", "--model", FRAUD, "--version", trained["model_version"]]
    proc = subprocess.Popen(
        [str(REPO / "kit"), *args],
        env={**os.environ, **stack.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not set(logs.glob("*-repro-*.log")) - before:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        assert git(source.parent, "worktree", "list").count("\n") == 1  # the rebuild's tree
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, out + err
    assert "reproduce stopped (SIGTERM); nothing registered" in err
    assert git(source.parent, "worktree", "list").count("\n") == 0
    # The job ran from the worktree (its entry point's path names it): nothing of it is left.
    left = [p for p in Path("/proc").glob("[0-9]*") if "mlp-reproduce-" in _cmdline(p)]
    assert not left, [_cmdline(p) for p in left]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
