"""Evaluation of a fraud scorer.

Threshold-free ranking metrics, the best-F1 operating point, and the plots logged as artifacts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers or in containers
import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics

__all__ = ["evaluate", "plot"]


def evaluate(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Metrics a fraud team reads: AP and ROC AUC, and precision/recall/F1 at the best-F1 cut."""
    precision, recall, thresholds = metrics.precision_recall_curve(y_true, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return {
        "average_precision": float(metrics.average_precision_score(y_true, scores)),
        "roc_auc": float(metrics.roc_auc_score(y_true, scores)),
        "log_loss": float(metrics.log_loss(y_true, np.clip(scores, 1e-7, 1 - 1e-7))),
        "f1": float(f1[best]),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
        "threshold": float(thresholds[best]) if len(thresholds) else 0.5,
        "positive_rate": float(np.mean(y_true)),
    }


def _save(
    out_dir: Path, name: str, size: tuple[int, int], title: str, draw: Callable[[Any], object]
) -> Path:
    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    ax.set_title(title)
    path = out_dir / name
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot(y_true: np.ndarray, scores: np.ndarray, threshold: float, out_dir: Path) -> list[Path]:
    """PR curve, ROC curve and confusion matrix as PNG files in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    predicted = (scores >= threshold).astype(int)
    return [
        _save(
            out_dir,
            "pr_curve.png",
            (5, 4),
            "Precision-recall (validation)",
            lambda ax: metrics.PrecisionRecallDisplay.from_predictions(y_true, scores, ax=ax),
        ),
        _save(
            out_dir,
            "roc_curve.png",
            (5, 4),
            "ROC (validation)",
            lambda ax: metrics.RocCurveDisplay.from_predictions(y_true, scores, ax=ax),
        ),
        _save(
            out_dir,
            "confusion_matrix.png",
            (4, 4),
            f"Confusion matrix at {threshold:.3f}",
            lambda ax: metrics.ConfusionMatrixDisplay.from_predictions(
                y_true, predicted, ax=ax, display_labels=["legit", "fraud"]
            ),
        ),
    ]
