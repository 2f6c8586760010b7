"""The environment the kit gives the processes it starts: a few harmless variables, nothing else.

A developer's shell carries AWS keys, profiles, proxies and MLFLOW_* settings; none of it may
reach a local service or a training job, which get exactly what the kit adds on top of this.
"""

from __future__ import annotations

import os

__all__ = ["INHERITED", "inherited_environment"]

INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "OPENBLAS_CORETYPE")


def inherited_environment() -> dict[str, str]:
    """The caller's values of INHERITED, and only those."""
    return {k: os.environ[k] for k in INHERITED if k in os.environ}
