"""Evaluation of a demand forecast: point errors, scale-free errors, and a naive baseline."""

from __future__ import annotations

import numpy as np

__all__ = ["evaluate", "wape"]


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error: total absolute error over total units sold.

    It weighs each row by its volume, so slow sellers with a few units do not dominate as they
    do in MAPE; NaN when nothing was sold at all (the ratio has no meaning then).
    """
    actual = np.asarray(actual, dtype=float)
    total = float(np.abs(actual).sum())
    if total == 0.0:
        return float("nan")
    return float(np.abs(actual - np.asarray(forecast, dtype=float)).sum() / total)


def evaluate(actual: np.ndarray, forecast: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """val_rmse, val_mae, val_mape, val_wape of `forecast`, and baseline_wape of `baseline`.

    MAPE is taken over the rows that sold something: a zero-unit day has no percentage error.
    """
    actual = np.asarray(actual, dtype=float)
    error = np.asarray(forecast, dtype=float) - actual
    sold = actual > 0
    mape = float(np.mean(np.abs(error[sold]) / actual[sold])) if sold.any() else float("nan")
    return {
        "val_rmse": float(np.sqrt(np.mean(error**2))),
        "val_mae": float(np.mean(np.abs(error))),
        "val_mape": mape,
        "val_wape": wape(actual, forecast),
        "baseline_wape": wape(actual, baseline),
    }
