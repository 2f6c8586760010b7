"""Job names, and the prefix per-team IAM policies scope jobs by (names.job_name_prefix)."""

from __future__ import annotations

import pytest

from mlplatform.names import job_name_prefix
from mlplatform.runners.request import job_name


@pytest.mark.parametrize(
    "model",
    [
        "fraud-classifier",
        "demand_forecast.v2",
        "m" * 63,
        "a-model-name-of-forty-characters-xxxxxxxx",
    ],
)
@pytest.mark.parametrize("marker", ["", "-repro"])
def test_every_job_of_a_model_starts_with_its_prefix(model: str, marker: str) -> None:
    name = job_name(model, marker)
    assert name.startswith(job_name_prefix(model)) and len(name) <= 63
