"""Recorded against rebuilt: identical, within tolerance, different; the worst item decides."""

from __future__ import annotations

import math

import pytest

from mlplatform.reproduce.predictions import difference
from mlplatform.reproduce.verdict import (
    DIFFERENT,
    IDENTICAL,
    WITHIN,
    Item,
    Report,
    compare_fingerprints,
    compare_metrics,
    compare_number,
    compare_predictions,
)


@pytest.mark.parametrize(
    ("recorded", "rebuilt", "verdict"),
    [
        (0.4086, 0.4086, IDENTICAL),
        (math.nan, math.nan, IDENTICAL),
        (0.4086, 0.4086 + 1e-12, WITHIN),
        (1e-15, 2e-15, WITHIN),  # near zero the tolerance is absolute
        (1000.0, 1000.0 + 5e-7, WITHIN),  # relative to the magnitude above 1
        (1000.0, 1000.0 + 5e-6, DIFFERENT),
        (0.4086, 0.41, DIFFERENT),
        (0.4, math.nan, DIFFERENT),
        (math.inf, math.inf, IDENTICAL),
        (1.0, math.inf, DIFFERENT),  # inf - 1 is inf, and so is the tolerance times inf
        (math.inf, -math.inf, DIFFERENT),
        (math.nan, math.inf, DIFFERENT),
    ],
)
def test_a_number_is_compared_relative_to_its_magnitude(
    recorded: float, rebuilt: float, verdict: str
) -> None:
    assert compare_number(recorded, rebuilt, 1e-9) == verdict


def test_every_point_of_a_metrics_history_is_compared() -> None:
    recorded = {"auc": [0.9], "loss": [0.5, 0.4, 0.3], "curve": [0.5, 0.4], "gone": [1.0]}
    rebuilt = {"auc": [0.9], "loss": [0.5, 0.41, 0.3], "curve": [0.5], "extra": [1.0]}
    items = {i.name: i for i in compare_metrics(recorded, rebuilt, 1e-9)}
    assert {name: i.verdict for name, i in items.items()} == {
        "metric auc": IDENTICAL,
        "metric curve (2 points)": DIFFERENT,  # a point less
        "metric extra": DIFFERENT,
        "metric gone": DIFFERENT,
        # The last points agree; one in the middle does not.
        "metric loss (3 points)": DIFFERENT,
    }
    assert (items["metric loss (3 points)"].recorded, items["metric gone"].rebuilt) == (
        "0.3",
        "missing",
    )


def test_fingerprints_match_exactly_or_differ() -> None:
    items = compare_fingerprints(
        {"mlp.lock.sha256": "a" * 64, "mlp.data.x.sha256": "b" * 64},
        {"mlp.lock.sha256": "a" * 64, "mlp.data.x.sha256": "c" * 64},
    )
    assert [(i.name, i.verdict) for i in items] == [
        ("mlp.data.x.sha256", DIFFERENT),
        ("mlp.lock.sha256", IDENTICAL),
    ]


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        ({"rows": 5, "identical": True, "max_abs_difference": 0.0, "scale": 3.0}, IDENTICAL),
        ({"rows": 5, "identical": False, "max_abs_difference": 1e-12, "scale": 3.0}, WITHIN),
        ({"rows": 5, "identical": False, "max_abs_difference": 0.01, "scale": 3.0}, DIFFERENT),
        ({"rows": 5, "shapes": [[5, 2], [5]]}, DIFFERENT),
        (
            {
                "rows": 5,
                "identical": False,
                "max_abs_difference": 0.0,
                "scale": 3.0,
                "non_finite_mismatches": 1,
            },
            DIFFERENT,
        ),
    ],
)
def test_predictions_compare_by_their_largest_difference(
    outcome: dict[str, object], verdict: str
) -> None:
    item = compare_predictions(outcome, "validation", 1e-9)
    assert item.verdict == verdict and item.name == "predictions on validation (5 rows)"


def test_the_report_is_its_worst_item() -> None:
    same, near, off = (Item("m", "1", "1", v) for v in (IDENTICAL, WITHIN, DIFFERENT))
    assert Report("m", "1", "r", 1e-9, [same]).verdict == IDENTICAL
    assert Report("m", "1", "r", 1e-9, [same, near]).verdict == WITHIN
    assert Report("m", "1", "r", 1e-9, [near, off, same]).as_json()["verdict"] == DIFFERENT
    # A report that compared nothing proves nothing.
    assert Report("m", "1", "r", 1e-9, []).verdict == DIFFERENT


@pytest.mark.parametrize(
    ("before", "after", "identical", "mismatches"),
    [
        ([0.1, 0.2], [0.1, 0.2], True, 0),
        ([0.1, math.nan], [0.1, math.nan], True, 0),
        ([0.1, math.nan], [0.1, 0.2], False, 1),  # a NaN where a number was: never "within"
        ([math.inf, 0.2], [1e308, 0.2], False, 1),
        ([math.inf, -math.inf], [math.inf, math.inf], False, 1),
    ],
)
def test_predictions_that_turn_nan_or_infinite_are_counted_not_ignored(
    before: list[float], after: list[float], identical: bool, mismatches: int
) -> None:
    result = difference(before, after)
    assert result["identical"] is identical and result["non_finite_mismatches"] == mismatches
    assert math.isfinite(float(str(result["max_abs_difference"])))


def test_predictions_of_another_shape_are_reported_as_shapes() -> None:
    assert difference([0.1, 0.2], [[0.1, 0.2]]) == {"shapes": [[2], [1, 2]]}
