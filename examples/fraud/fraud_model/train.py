"""The fraud classifier's training: read the channels, fit, evaluate, log, register.

Run by the kit as this source's entry point (../train.py) under SageMaker's job contract; the
kit's helper (mlp_training) does the job's plumbing: login, lineage tags, registration as
`challenger`, the failure file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlp_training
from fraud_model.data import FEATURES, LABEL
from fraud_model.evaluate import evaluate, plot
from fraud_model.hyperparameters import Hyperparameters, parse

__all__ = ["ChannelError", "build_pipeline", "load_channel", "train"]

REQUIRED_CHANNELS = ("train", "validation")
# MLflow stores sklearn models with skops (no pickle); these are the non-default types the
# pipeline holds, declared so loading does not refuse them.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


class ChannelError(mlp_training.JobError):
    """An input channel is missing, empty or has the wrong columns."""


def load_channel(job: mlp_training.Job, name: str) -> pd.DataFrame:
    """Read every CSV of a channel into one frame and check its columns."""
    folder = job.channel(name)
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


def train(job: mlp_training.Job) -> None:
    """Train on the channels, log everything to MLflow, register a version as challenger."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.utils.class_weight import compute_sample_weight

    hp = parse(job.hyperparameters)
    train_frame, val = (load_channel(job, n) for n in REQUIRED_CHANNELS)
    x, y = train_frame[list(FEATURES)], train_frame[LABEL].to_numpy()
    x_val, y_val = val[list(FEATURES)], val[LABEL].to_numpy()
    client = MlflowClient()
    with job.start_run() as run:
        rid = run.info.run_id
        job.log_hyperparameters(hp.model_dump())
        mlflow.log_params({"train_rows": len(train_frame), "val_rows": len(val)})
        mlflow.log_input(from_pandas(train_frame, name="train", targets=LABEL), "training")
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
        job.log_model(
            mlflow.sklearn,
            pipeline,
            signature=signature,
            input_example=x_val.head(5),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=TRUSTED_TYPES,
        )
