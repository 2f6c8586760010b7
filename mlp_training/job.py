"""One training job as a source sees it: its folders, hyperparameters, MLflow run and model.

    import mlp_training

    def train(job: mlp_training.Job) -> None:
        frame = pandas.read_csv(job.channel("train") / "data.csv")
        rounds = int(job.hyperparameters.get("rounds", "100"))
        with job.start_run():
            job.log_hyperparameters({"rounds": rounds})
            model = fit(frame, rounds)
            mlflow.log_metric("val_rmse", score(model))
            job.log_model(mlflow.lightgbm, model, input_example=frame.head(5))

    if __name__ == "__main__":
        raise SystemExit(mlp_training.run(train))

`run` does what every job needs around `train`: it reads the hyperparameters (script-mode
arguments, else SageMaker's hyperparameters.json), turns a `JobError` into SageMaker's failure
file and exit code 2 with one line on stderr, deletes a version registered by a job that failed
afterwards, and writes the result the kit's runners read. `start_run` logs in with the
credentials named by the job's environment (never a password in it), opens the run under the
model's experiment with the lineage tags, and `log_model` logs the model to the run, writes the
same MLflow model where SageMaker packs model.tar.gz from, and registers it as `challenger`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlp_training.contract import Contract, contract_from_env
from mlp_training.tracking import TrackingError, check_reachable, load_credentials
from mlp_training.tracking import reproducibility_tags as _tags

__all__ = [
    "CHALLENGER",
    "HYPERPARAMETERS_TAG",
    "MODEL_SUBDIR",
    "Job",
    "JobError",
    "parse_arguments",
    "run",
]

CHALLENGER = "challenger"
# The names of the run's params that are the job's effective hyperparameters (defaults
# included): `invoke reproduce` passes exactly these again, so no default changed since leaks in.
HYPERPARAMETERS_TAG = "mlp.hyperparameters"
# Under SM_MODEL_DIR: the MLflow model the endpoint serves (scoring_server reads it there).
MODEL_SUBDIR = "mlflow-model"


class JobError(RuntimeError):
    """A failure the job's owner can fix (bad input, bad hyperparameter): one line, exit 2."""


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """Script mode's `--key value` / `--key=value` pairs as strings (dashes become underscores)."""
    values: dict[str, str] = {}
    items = iter(argv)
    for item in items:
        if not item.startswith("--"):
            raise JobError(f"unexpected argument {item!r}; use --name value")
        key, sep, value = item[2:].partition("=")
        if not sep:
            following = next(items, None)
            if following is None:
                raise JobError(f"--{key} needs a value")
            value = following
        values[key.replace("-", "_")] = value
    return values


def _hyperparameters(contract: Contract, argv: list[str]) -> dict[str, str]:
    if argv:
        return parse_arguments(argv)
    path = contract.config_dir / "hyperparameters.json"
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise JobError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise JobError(f"{path}: must hold a JSON object")
    return {str(k): str(v) for k, v in raw.items()}


class Job:
    """The job's contract, hyperparameters and registered model, for a source's `train`."""

    def __init__(self, contract: Contract, hyperparameters: dict[str, str]) -> None:
        self.contract = contract
        self.hyperparameters = hyperparameters
        self.model_name = os.environ.get("MLP_MODEL_NAME", "")
        if not self.model_name:
            raise JobError("MLP_MODEL_NAME is not set (the kit's runners set it)")
        self.runner = os.environ.get("MLP_RUNNER", "?")
        # `invoke reproduce` rebuilds a version into a run of its own and registers nothing.
        self.registers = os.environ.get("MLP_REGISTER", "true") != "false"
        self.run_id: str | None = None
        self.version: str | None = None
        self._previous_challenger: str | None = None
        self._logged = False

    @property
    def model_dir(self) -> Path:
        """SM_MODEL_DIR: what SageMaker packs into model.tar.gz."""
        return self.contract.model_dir

    @property
    def checkpoint_dir(self) -> Path:
        """Where to save state a restarted job resumes from (made if missing).

        See docs/training.md, "Machines, spot and checkpoints".
        """
        folder = self.contract.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def channel(self, name: str) -> Path:
        """The folder of input channel `name`; JobError when it is missing or empty."""
        folder = self.contract.channels.get(name)
        if folder is None or not folder.is_dir():
            raise JobError(
                f"input channel {name!r} is missing (expected SM_CHANNEL_{name.upper()})"
            )
        if not any(p.is_file() for p in folder.rglob("*")):
            raise JobError(f"input channel {name!r} is empty ({folder})")
        return folder

    @contextmanager
    def start_run(self, **tags: str) -> Iterator[Any]:
        """Log in, then open the job's MLflow run (experiment MLP_EXPERIMENT or the model's name).

        The run is named after the training job and carries the lineage tags (git state, lock,
        source and channel fingerprints, image, runner) besides `tags`.
        """
        import mlflow

        lineage = _tags(self.contract, self.runner)
        load_credentials()
        check_reachable()
        mlflow.set_experiment(os.environ.get("MLP_EXPERIMENT") or self.model_name)
        with mlflow.start_run(
            run_name=os.environ.get("TRAINING_JOB_NAME"), tags={**lineage, **tags}
        ) as active:
            self.run_id = active.info.run_id
            yield active

    def log_hyperparameters(self, values: dict[str, Any]) -> None:
        """Log the effective hyperparameters (defaults included) as the run's params.

        They are named in the run's `mlp.hyperparameters` tag, so `invoke reproduce` can train
        with the recorded values instead of today's defaults.
        """
        import mlflow

        if self.run_id is None:
            raise JobError("log_hyperparameters needs an open run: call it in `job.start_run()`")
        mlflow.log_params(values)
        mlflow.set_tag(HYPERPARAMETERS_TAG, ",".join(sorted(values)))

    def log_model(self, flavor: Any, model: Any, **kwargs: Any) -> str | None:
        """Log `model` with an MLflow flavor module, save it for the endpoint, register it.

        `flavor` is the module (mlflow.sklearn, mlflow.lightgbm, mlflow.pyfunc, ...) and kwargs
        go to both its log_model and save_model (signature, input_example, ...). Returns the new
        version, which `challenger` names; `champion` moves only through the kit's gate. A
        reproduction (MLP_REGISTER=false) logs and saves the model and registers nothing: None.
        """
        if self.run_id is None:
            raise JobError("log_model needs an open run: call it inside `with job.start_run():`")
        if self._logged:
            raise JobError("this job already logged its model")
        info = flavor.log_model(model, name="model", **kwargs)
        flavor.save_model(model, self.model_dir / MODEL_SUBDIR, **kwargs)
        self._logged = True
        if not self.registers:
            return None
        self.version = self._register(info.model_uri)
        return self.version

    def _register(self, model_uri: str) -> str:
        import mlflow
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        try:
            previous = client.get_model_version_by_alias(self.model_name, CHALLENGER)
            self._previous_challenger = str(previous.version)
        except MlflowException:
            self._previous_challenger = None  # no model or no alias yet
        run = client.get_run(str(self.run_id))
        lineage = {k: v for k, v in run.data.tags.items() if k.startswith("mlp.")}
        version = mlflow.register_model(
            model_uri, self.model_name, tags={"mlp.run_id": str(self.run_id), **lineage}
        ).version
        try:
            client.set_registered_model_alias(self.model_name, CHALLENGER, version)
        except Exception:
            client.delete_model_version(self.model_name, version)
            raise
        return str(version)

    def undo_registration(self) -> None:
        """Delete the version this job registered and point `challenger` back where it was."""
        if self.version is None:
            return
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        client.delete_model_version(self.model_name, self.version)
        if self._previous_challenger is not None:
            client.set_registered_model_alias(
                self.model_name, CHALLENGER, self._previous_challenger
            )
        self.version = None

    def result(self) -> dict[str, Any]:
        """What the runners read from output/data/result.json; JobError if no model was made."""
        if self.run_id is None or not self._logged:
            raise JobError("the job registered no model: call job.log_model(...) in its run")
        if not (self.model_dir / MODEL_SUBDIR / "MLmodel").is_file():
            raise JobError(f"no MLflow model in {self.model_dir / MODEL_SUBDIR}")
        from mlflow.tracking import MlflowClient

        metrics = MlflowClient().get_run(self.run_id).data.metrics
        return {
            "run_id": self.run_id,
            "model_name": self.model_name,
            "model_version": self.version or "",
            "metrics": dict(metrics),
        }


def run(train: Callable[[Job], None], argv: list[str] | None = None) -> int:
    """Run `train` as a SageMaker job: 0 on success, 2 with a one-line reason on a JobError."""
    contract = contract_from_env()
    argv = sys.argv[1:] if argv is None else argv
    job: Job | None = None
    try:
        job = Job(contract, _hyperparameters(contract, argv))
        train(job)
        result = job.result()
    except (JobError, TrackingError) as exc:
        _failed(contract, job, str(exc))
        print(f"training: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:
        _failed(contract, job, f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    contract.output_data_dir.mkdir(parents=True, exist_ok=True)
    (contract.output_data_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("run_id", "model_name", "model_version")}))
    return 0


def _failed(contract: Contract, job: Job | None, reason: str) -> None:
    """A failed job leaves its reason for SageMaker and no registered version behind."""
    contract.write_failure(reason)
    if job is not None:
        try:
            job.undo_registration()
        except Exception as exc:  # the reason above matters more; say what is left over
            print(f"training: could not delete version {job.version}: {exc}", file=sys.stderr)
