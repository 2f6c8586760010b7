"""The demand forecast's training: read the channels, fit LightGBM, evaluate, log, register.

Run by the kit as this source's entry point (../train.py) under SageMaker's job contract; the
kit's helper (mlp_training) does the job's plumbing: login, lineage tags, registration as
`challenger`, the failure file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlp_training
from forecast_model.data import FEATURES, TARGET
from forecast_model.evaluate import evaluate
from forecast_model.hyperparameters import Hyperparameters, parse

__all__ = [
    "CATEGORICAL",
    "ChannelError",
    "fit",
    "lightgbm_params",
    "load_channel",
    "model_input",
    "model_requirements",
    "read_channel",
    "train",
]

REQUIRED_CHANNELS = ("train", "validation")
# Store and family are codes, not quantities: LightGBM splits them as categories natively.
CATEGORICAL = ("store", "family")
# The seasonal-naive forecast the model has to beat: the same weekday a week ago.
BASELINE = "lag_7"
# What loading and predicting with the booster imports; MLflow adds its own pin.
MODEL_PACKAGES = ("lightgbm", "numpy", "pandas", "scipy")
# Sales history: a series without a week of it yet has none, so these may be missing (null).
HISTORY = ("lag_7", "lag_14", "rolling_mean_7")


class ChannelError(mlp_training.JobError):
    """An input channel is missing, empty or has the wrong columns."""


def read_channel(folder: Path, name: str) -> pd.DataFrame:
    """Read every CSV under `folder` into one frame and check its columns and target."""
    files = sorted(folder.rglob("*.csv"))
    if not files:
        raise ChannelError(f"input channel {name!r} has no CSV files in {folder}")
    try:
        frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChannelError(f"input channel {name!r}: unreadable CSV: {first}") from None
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        raise ChannelError(f"input channel {name!r} lacks columns {missing}")
    if frame.empty:
        raise ChannelError(f"input channel {name!r} has no rows")
    wrong = [c for c in (*FEATURES, TARGET) if not pd.api.types.is_numeric_dtype(frame[c])]
    if wrong:
        raise ChannelError(f"input channel {name!r}: columns {wrong} are not numeric")
    units = frame[TARGET]
    if units.isna().any() or (units < 0).any():
        raise ChannelError(f"input channel {name!r}: {TARGET} must be present and >= 0")
    # WAPE divides by the units sold: a channel that sold nothing cannot be scored.
    if units.sum() == 0:
        raise ChannelError(f"input channel {name!r}: {TARGET} is zero on every row")
    return frame


def load_channel(job: mlp_training.Job, name: str) -> pd.DataFrame:
    """The job's channel `name` as a checked frame (JobError when missing, empty or wrong)."""
    return read_channel(job.channel(name), name)


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns the model takes, the sales history as floats.

    Floats in the signature let a caller send null for history a new series does not have yet
    (LightGBM routes a missing value down the branch it learned for it) and still send whole
    numbers; the calendar and code columns stay integers.
    """
    return frame[list(FEATURES)].astype(dict.fromkeys(HISTORY, "float64"))


def model_requirements() -> list[str]:
    """The model's pip requirements: MODEL_PACKAGES pinned at the versions installed here.

    Stated rather than inferred: MLflow infers them by loading the model in a subprocess on each
    of log_model and save_model, which took longer than the fit. The endpoint serves in the
    source's locked environment anyway; these pins record what the model was made with.
    """
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in MODEL_PACKAGES]


def lightgbm_params(hp: Hyperparameters) -> dict[str, Any]:
    """LightGBM's parameters: the hyperparameters plus what makes a run repeatable.

    One thread, row-wise histograms and `deterministic` give the same trees for the same data
    and seed on any machine; Poisson loss, since units sold are counts.
    """
    return {
        "objective": "poisson",
        "metric": ["rmse", "l1"],
        "num_leaves": hp.num_leaves,
        "learning_rate": hp.learning_rate,
        "min_child_samples": hp.min_child_samples,
        "seed": hp.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }


def fit(
    hp: Hyperparameters, train_frame: pd.DataFrame, validation: pd.DataFrame | None = None
) -> tuple[Any, dict[str, list[float]]]:
    """Fit the booster; with `validation`, also its RMSE and MAE there after every iteration.

    The validation set is only watched, never used to stop early or tune: it is also what the
    gate compares, so choosing on it would flatter the model.
    """
    import lightgbm as lgb

    dataset = lgb.Dataset(
        model_input(train_frame),
        label=train_frame[TARGET].to_numpy(dtype=float),
        categorical_feature=list(CATEGORICAL),
        free_raw_data=True,
    )
    history: dict[str, Any] = {}
    watched: dict[str, Any] = {}
    if validation is not None:
        watched = {
            "valid_sets": [
                lgb.Dataset(
                    model_input(validation),
                    label=validation[TARGET].to_numpy(dtype=float),
                    reference=dataset,
                )
            ],
            "valid_names": ["validation"],
            "callbacks": [lgb.record_evaluation(history)],
        }
    booster = lgb.train(lightgbm_params(hp), dataset, num_boost_round=hp.n_estimators, **watched)
    curves = history.get("validation", {})
    return booster, {"rmse": list(curves.get("rmse", [])), "mae": list(curves.get("l1", []))}


def _iteration_metrics(curves: dict[str, list[float]]) -> list[Any]:
    from mlflow.entities import Metric

    now = int(pd.Timestamp.now().timestamp() * 1000)
    return [
        Metric(f"iter_val_{name}", float(value), now, step)
        for name, values in curves.items()
        for step, value in enumerate(values, start=1)
    ]


def train(job: mlp_training.Job) -> None:
    """Train on the channels, log everything to MLflow, register a version as challenger."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    # Bad hyperparameters and bad channels fail here, before anything is written to MLflow.
    hp = parse(job.hyperparameters)
    train_frame, validation = (load_channel(job, n) for n in REQUIRED_CHANNELS)
    x_val = model_input(validation)
    with job.start_run() as run:
        job.log_hyperparameters(hp.model_dump())
        mlflow.log_params(
            {
                "objective": lightgbm_params(hp)["objective"],
                "train_rows": len(train_frame),
                "val_rows": len(validation),
            }
        )
        mlflow.log_input(from_pandas(train_frame, name="train", targets=TARGET), "training")
        mlflow.log_input(from_pandas(validation, name="validation", targets=TARGET), "eval")
        booster, curves = fit(hp, train_frame, validation)
        history = _iteration_metrics(curves)
        client = MlflowClient()
        for i in range(0, len(history), 1000):
            client.log_batch(run.info.run_id, metrics=history[i : i + 1000])
        predictions = booster.predict(x_val)
        mlflow.log_metrics(
            evaluate(validation[TARGET].to_numpy(), predictions, validation[BASELINE].to_numpy())
        )
        gain = booster.feature_importance(importance_type="gain")
        mlflow.log_dict(
            dict(zip(booster.feature_name(), np.round(gain, 3).tolist(), strict=True)),
            "feature_importance_gain.json",
        )
        # A Booster is stored in LightGBM's own text format (no pickle); pyfunc predicts units.
        job.log_model(
            mlflow.lightgbm,
            booster,
            signature=infer_signature(x_val, predictions),
            input_example=x_val.head(5),
            pip_requirements=model_requirements(),
        )
