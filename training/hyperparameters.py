"""Hyperparameters: typed, bounded, and parsed from the strings SageMaker passes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["HyperparameterError", "Hyperparameters", "from_arguments", "from_file"]


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or out of range (one line, names the key)."""


class Hyperparameters(BaseModel):
    """The classifier's settings; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: Annotated[int, Field(ge=1, le=2000)] = 150
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    max_depth: Annotated[int, Field(ge=1, le=12)] = 3
    subsample: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    min_samples_leaf: Annotated[int, Field(ge=1, le=10000)] = 20
    class_weight: Literal["balanced", "none"] = "balanced"
    seed: int = 42

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


def from_arguments(argv: list[str]) -> Hyperparameters:
    """Parse `--key value` / `--key=value` pairs, the way script mode passes hyperparameters."""
    values: dict[str, str] = {}
    items = iter(argv)
    for item in items:
        if not item.startswith("--"):
            raise HyperparameterError(f"unexpected argument {item!r}; use --name value")
        key, sep, value = item[2:].partition("=")
        if not sep:
            following = next(items, None)
            if following is None:
                raise HyperparameterError(f"--{key} needs a value")
            value = following
        values[key.replace("-", "_")] = value
    return parse(values)


def from_file(path: Path) -> Hyperparameters:
    """Read SageMaker's hyperparameters.json (a JSON object of strings)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HyperparameterError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise HyperparameterError(f"{path}: must hold a JSON object")
    return parse(raw)
