"""Training sources: a team's folder of training code (manifest) and its environment."""

from mlplatform.sources.manifest import (
    HELPER_ROOT,
    GateSpec,
    Source,
    check_lock,
    configured_sources,
    load_source,
    model_source,
)

__all__ = [
    "HELPER_ROOT",
    "GateSpec",
    "Source",
    "check_lock",
    "configured_sources",
    "load_source",
    "model_source",
]
