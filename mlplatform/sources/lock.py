"""`invoke lock --source DIR`: a source's requirements.in compiled to its hash lock."""

from __future__ import annotations

from pathlib import Path

from mlplatform.errors import SourceError
from mlplatform.sources.manifest import Source, check_lock
from mlplatform.toolchain.locking import compile_lock

__all__ = ["lock_source"]


def lock_source(source: Source) -> Path:
    """Write a source's requirements.txt from its requirements.in, hash-locked; check it."""
    if not source.requirements.is_file():
        raise SourceError(f"{source.label} has no {source.requirements.name} to lock")
    compile_lock(
        [str(source.requirements)],
        source.lock,
        command=f"invoke lock --source {source.label}",
    )
    check_lock(source)
    return source.lock
