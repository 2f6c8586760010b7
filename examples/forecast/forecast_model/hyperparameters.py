"""Hyperparameters: typed, bounded, and parsed from the strings SageMaker passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlp_training import JobError

__all__ = ["HyperparameterError", "Hyperparameters", "parse"]


class HyperparameterError(JobError):
    """A hyperparameter is unknown or out of range (one line, names the key)."""


class Hyperparameters(BaseModel):
    """The regressor's settings; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_leaves: Annotated[int, Field(ge=2, le=1024)] = 31
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    n_estimators: Annotated[int, Field(ge=1, le=5000)] = 300
    min_child_samples: Annotated[int, Field(ge=1, le=10000)] = 20
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42

    def as_strings(self) -> dict[str, str]:
        """The form SageMaker's CreateTrainingJob takes (every value a string)."""
        return {k: str(v) for k, v in self.model_dump().items()}


def parse(values: Mapping[str, object]) -> Hyperparameters:
    """Validate a mapping (SageMaker passes strings); HyperparameterError if bad."""
    try:
        return Hyperparameters.model_validate(dict(values))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "hyperparameters"
        reason = "unknown hyperparameter" if err["type"] == "extra_forbidden" else err["msg"]
        raise HyperparameterError(f"{key}: {reason} (got {err.get('input')!r})") from None
