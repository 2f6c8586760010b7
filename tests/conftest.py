"""Suite-wide safety: no test reaches real AWS or a developer's MLflow by accident."""

from __future__ import annotations

import os

import pytest

SCRUBBED_PREFIXES = ("AWS_", "MLFLOW_", "MLPLATFORM_")


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove AWS_*, MLFLOW_* and MLPLATFORM_* so tests set exactly what they need."""
    for key in list(os.environ):
        if key.startswith(SCRUBBED_PREFIXES):
            monkeypatch.delenv(key)
    # boto3 must not find a developer's ~/.aws either.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `aws` touch real AWS: they run only when selected with -m aws."""
    selected = config.getoption("-m") or ""
    if "aws" in selected:
        return
    skip = pytest.mark.skip(reason="touches real AWS; select explicitly with -m aws")
    for item in items:
        if item.get_closest_marker("aws") is not None:
            item.add_marker(skip)
