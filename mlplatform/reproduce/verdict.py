"""Recorded against rebuilt, item by item: identical, within tolerance, or different.

A number is within tolerance when it differs by no more than `tolerance` times the larger of the
two magnitudes (or of 1, so values near zero compare absolutely); fingerprints (lock, source,
data) are identical or different. The report's verdict is its worst item.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DIFFERENT",
    "IDENTICAL",
    "WITHIN",
    "Item",
    "Report",
    "compare_fingerprints",
    "compare_metrics",
    "compare_number",
    "compare_predictions",
]

IDENTICAL, WITHIN, DIFFERENT = "identical", "within tolerance", "different"
_RANK = {IDENTICAL: 0, WITHIN: 1, DIFFERENT: 2}


@dataclass(frozen=True)
class Item:
    """One compared thing: what it is, both values as text, and the verdict."""

    name: str
    recorded: str
    rebuilt: str
    verdict: str


@dataclass(frozen=True)
class Report:
    """A reproduction's outcome: the version, the rebuilt run, every item and the verdict."""

    model: str
    version: str
    rebuilt_run_id: str
    tolerance: float
    items: list[Item] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The worst item's verdict (identical when every item is)."""
        return max((i.verdict for i in self.items), key=_RANK.__getitem__, default=DIFFERENT)

    def as_json(self) -> dict[str, Any]:
        """A plain dict for `--json` and the report artifact."""
        return {**asdict(self), "verdict": self.verdict}


def compare_number(recorded: float, rebuilt: float, tolerance: float) -> str:
    """The verdict on one number (NaN equals NaN: a metric that was NaN is NaN again)."""
    if recorded == rebuilt or (math.isnan(recorded) and math.isnan(rebuilt)):
        return IDENTICAL
    # An infinity or a NaN against anything else is no rounding difference.
    if not (math.isfinite(recorded) and math.isfinite(rebuilt)):
        return DIFFERENT
    if _within(abs(recorded - rebuilt), max(abs(recorded), abs(rebuilt)), tolerance):
        return WITHIN
    return DIFFERENT


def compare_metrics(
    recorded: dict[str, list[float]], rebuilt: dict[str, list[float]], tolerance: float
) -> list[Item]:
    """Every metric either run logged, each point of its history in step order.

    A metric only one run has, or with another number of points, is different; else the worst
    point decides. The values shown are the last points.
    """
    items = []
    for name in sorted(recorded.keys() | rebuilt.keys()):
        before, after = recorded.get(name, []), rebuilt.get(name, [])
        if not before or not after or len(before) != len(after):
            verdict = DIFFERENT
        else:
            verdicts = [compare_number(a, b, tolerance) for a, b in zip(before, after, strict=True)]
            verdict = max(verdicts, key=_RANK.__getitem__)
        steps = f" ({len(before)} points)" if len(before) > 1 else ""
        items.append(Item(f"metric {name}{steps}", _last(before), _last(after), verdict))
    return items


def compare_fingerprints(recorded: dict[str, str], rebuilt: dict[str, str]) -> list[Item]:
    """Tags that must match exactly (lock, source and data sha256), by name."""
    return [
        Item(
            name,
            recorded.get(name, "missing")[:16],
            rebuilt.get(name, "missing")[:16],
            IDENTICAL if recorded.get(name) == rebuilt.get(name) else DIFFERENT,
        )
        for name in sorted(recorded)
    ]


def compare_predictions(outcome: dict[str, Any], channel: str, tolerance: float) -> Item:
    """The verdict on two models' predictions (predictions.py's JSON) on one channel."""
    name = f"predictions on {channel} ({outcome.get('rows', 0)} rows)"
    if "shapes" in outcome:
        before, after = outcome["shapes"]
        return Item(name, f"shape {before}", f"shape {after}", DIFFERENT)
    difference = float(outcome["max_abs_difference"])
    mismatches = int(outcome.get("non_finite_mismatches", 0))
    if outcome["identical"]:
        verdict = IDENTICAL
    elif not mismatches and _within(difference, float(outcome["scale"]), tolerance):
        verdict = WITHIN
    else:
        verdict = DIFFERENT
    shown = f"max |difference| {difference:.3g}"
    if mismatches:
        shown += f", {mismatches} NaN or infinite on one side only"
    return Item(name, "recorded model", shown, verdict)


def _within(difference: float, magnitude: float, tolerance: float) -> bool:
    """Relative to the magnitude above 1, absolute below it."""
    return difference <= tolerance * max(1.0, magnitude)


def _last(history: list[float]) -> str:
    if not history:
        return "missing"
    return f"{history[-1]:.10g}"
