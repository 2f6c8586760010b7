"""The training entry point: read the SageMaker contract, train, evaluate, log, register.

    python -m training --n_estimators 200        # script mode: hyperparameters as arguments
    train                                         # in the image: hyperparameters.json instead

Environment: MLFLOW_TRACKING_URI, MLFLOW_CLIENT_SECRET_ID (never a password), MLP_MODEL_NAME,
optionally MLP_EXPERIMENT, MLP_GIT_COMMIT, MLP_GIT_DIRTY, MLP_TRAINING_IMAGE, MLP_RUNNER.
A new model version gets the `challenger` alias; `champion` moves only through the promotion gate.
On failure the reason goes to /opt/ml/output/failure (as SageMaker expects) and stderr, exit 2.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.contract import Contract, contract_from_env
from training.data import FEATURES, LABEL
from training.evaluate import evaluate, plot
from training.hyperparameters import (
    HyperparameterError,
    Hyperparameters,
    from_arguments,
    from_file,
)
from training.tracking import TrackingError, check_reachable, load_credentials, reproducibility_tags

__all__ = ["ChannelError", "main"]

REQUIRED_CHANNELS = ("train", "validation")
CHALLENGER = "challenger"
# MLflow stores sklearn models with skops (no pickle); these are the non-default types the
# pipeline holds, declared so loading does not refuse them.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


class ChannelError(ValueError):
    """An input channel is missing, empty or has the wrong columns."""


def load_channel(contract: Contract, name: str) -> pd.DataFrame:
    """Read every CSV of a channel into one frame and check its columns."""
    folder = contract.channels.get(name)
    if folder is None or not folder.is_dir():
        raise ChannelError(
            f"input channel {name!r} is missing (expected SM_CHANNEL_{name.upper()})"
        )
    files = sorted(folder.rglob("*.csv"))
    if not files:
        raise ChannelError(f"input channel {name!r} has no CSV files in {folder}")
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    missing = [c for c in (*FEATURES, LABEL) if c not in frame.columns]
    if missing:
        raise ChannelError(f"input channel {name!r} lacks columns {missing}")
    if frame[LABEL].nunique() < 2:
        raise ChannelError(f"input channel {name!r} holds only one class")
    return frame


def build_pipeline(hp: Hyperparameters) -> Any:
    """One-hot merchant category, gradient-boosted trees on everything."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [f for f in FEATURES if f != "merchant_category"]
    prep = ColumnTransformer(
        [
            ("category", OneHotEncoder(handle_unknown="ignore"), ["merchant_category"]),
            ("numeric", "passthrough", numeric),
        ]
    )
    model = GradientBoostingClassifier(
        n_estimators=hp.n_estimators,
        learning_rate=hp.learning_rate,
        max_depth=hp.max_depth,
        subsample=hp.subsample,
        min_samples_leaf=hp.min_samples_leaf,
        random_state=hp.seed,
    )
    return Pipeline([("prep", prep), ("classifier", model)])


def _iteration_metrics(pipeline: Any, x_val: pd.DataFrame, y_val: np.ndarray) -> list[Any]:
    from mlflow.entities import Metric
    from sklearn.metrics import average_precision_score, log_loss

    now = int(pd.Timestamp.now().timestamp() * 1000)
    prepared = pipeline[:-1].transform(x_val)
    out = []
    for step, proba in enumerate(pipeline[-1].staged_predict_proba(prepared), start=1):
        p = np.clip(proba[:, 1], 1e-7, 1 - 1e-7)
        out.append(Metric("iter_val_log_loss", float(log_loss(y_val, p)), now, step))
        out.append(
            Metric(
                "iter_val_average_precision", float(average_precision_score(y_val, p)), now, step
            )
        )
    return out


def train_and_register(
    hp: Hyperparameters, contract: Contract, model_name: str, runner: str
) -> dict[str, Any]:
    """Train on the channels, log everything to MLflow, register a version as challenger."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.utils.class_weight import compute_sample_weight

    train, val = (load_channel(contract, n) for n in REQUIRED_CHANNELS)
    x, y = train[list(FEATURES)], train[LABEL].to_numpy()
    x_val, y_val = val[list(FEATURES)], val[LABEL].to_numpy()
    tags = reproducibility_tags(contract, runner)
    load_credentials()
    check_reachable()

    client = MlflowClient()
    mlflow.set_experiment(os.environ.get("MLP_EXPERIMENT") or model_name)
    with mlflow.start_run(run_name=os.environ.get("TRAINING_JOB_NAME"), tags=tags) as run:
        rid = run.info.run_id
        mlflow.log_params({**hp.model_dump(), "train_rows": len(train), "val_rows": len(val)})
        mlflow.log_input(from_pandas(train, name="train", targets=LABEL), "training")
        mlflow.log_input(from_pandas(val, name="validation", targets=LABEL), "eval")
        pipeline = build_pipeline(hp)
        weights = compute_sample_weight("balanced", y) if hp.class_weight == "balanced" else None
        pipeline.fit(x, y, classifier__sample_weight=weights)
        history = _iteration_metrics(pipeline, x_val, y_val)
        for i in range(0, len(history), 1000):
            client.log_batch(rid, metrics=history[i : i + 1000])
        scores = pipeline.predict_proba(x_val)[:, 1]
        results = evaluate(y_val, scores)
        mlflow.log_metrics(results)
        with tempfile.TemporaryDirectory() as tmp:
            plot(y_val, scores, results["threshold"], Path(tmp))
            mlflow.log_artifacts(tmp, "plots")
        signature = infer_signature(x_val.head(100), pipeline.predict_proba(x_val.head(100)))
        example = x_val.head(5)
        flavour = dict(
            signature=signature,
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=TRUSTED_TYPES,
        )
        info = mlflow.sklearn.log_model(pipeline, name="model", **flavour)
        # SageMaker packs SM_MODEL_DIR into model.tar.gz: ship the same MLflow model there.
        mlflow.sklearn.save_model(pipeline, contract.model_dir / "mlflow-model", **flavour)
        version = register(client, model_name, info.model_uri, rid, tags)
    return {
        "run_id": rid,
        "model_name": model_name,
        "model_version": version,
        "metrics": results,
        "tags": tags,
    }


def register(client: Any, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Register a version and point `challenger` at it; a failure leaves no version behind."""
    import mlflow

    mv = mlflow.register_model(model_uri, name, tags={"mlp.run_id": run_id, **tags})
    try:
        client.set_registered_model_alias(name, CHALLENGER, mv.version)
    except Exception:
        client.delete_model_version(name, mv.version)
        raise
    return str(mv.version)


def main(argv: list[str] | None = None) -> int:
    """Run the job; 0 on success, 2 with a one-line reason on a failure the user can fix."""
    contract = contract_from_env()
    argv = sys.argv[1:] if argv is None else argv
    try:
        hp_file = contract.config_dir / "hyperparameters.json"
        if argv:
            hp = from_arguments(argv)
        elif hp_file.exists():
            hp = from_file(hp_file)
        else:
            hp = Hyperparameters()
        model_name = os.environ.get("MLP_MODEL_NAME", "")
        if not model_name:
            raise ChannelError("MLP_MODEL_NAME is not set")
        result = train_and_register(hp, contract, model_name, os.environ.get("MLP_RUNNER", "?"))
    except (HyperparameterError, ChannelError, TrackingError) as exc:
        contract.write_failure(str(exc))
        print(f"training: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        contract.write_failure(f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    contract.output_data_dir.mkdir(parents=True, exist_ok=True)
    (contract.output_data_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("run_id", "model_name", "model_version")}))
    return 0
