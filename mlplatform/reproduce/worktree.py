"""A source folder as it was at a recorded commit: a detached git worktree, removed afterwards.

A worktree shares the repository's objects, so nothing is cloned and the user's own work tree
(and its uncommitted changes) is never touched.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ReproduceError

__all__ = ["source_at_commit"]


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise ReproduceError("git is not installed; reproducing needs it") from None
    except subprocess.TimeoutExpired:
        raise ReproduceError(
            f"git {args[0]} took over 120 s in {cwd}; nothing was rebuilt"
        ) from None


def _repository(source: str) -> tuple[Path, Path]:
    """The work tree holding the recorded source, and the source's path inside it."""
    folder = Path(source) if Path(source).is_absolute() else REPO_ROOT / source
    anchor = folder if folder.is_dir() else REPO_ROOT
    top = _git(["rev-parse", "--show-toplevel"], anchor)
    if top.returncode != 0:
        raise ReproduceError(f"{anchor} is not in a git work tree: the recorded commit is not here")
    root = Path(top.stdout.strip()).resolve()
    try:
        return root, folder.resolve().relative_to(root)
    except ValueError:
        raise ReproduceError(f"source {source} is not inside the git work tree {root}") from None


@contextmanager
def source_at_commit(source: str, commit: str) -> Iterator[Path]:
    """The recorded source folder checked out at `commit`, for the duration of the block."""
    root, inside = _repository(source)
    if _git(["cat-file", "-e", f"{commit}^{{commit}}"], root).returncode != 0:
        raise ReproduceError(
            f"commit {commit[:12]} is not in the repository at {root}: fetch it (git fetch) first"
        )
    with tempfile.TemporaryDirectory(prefix="mlp-reproduce-") as tmp:
        tree = Path(tmp) / "tree"
        added = _git(["worktree", "add", "--detach", "--quiet", str(tree), commit], root)
        if added.returncode != 0:
            first = (added.stderr.strip().splitlines() or ["git worktree add failed"])[0]
            raise ReproduceError(f"cannot check out {commit[:12]}: {first}")
        try:
            if not (tree / inside).is_dir():
                raise ReproduceError(f"commit {commit[:12]} has no folder {inside}")
            yield tree / inside
        finally:
            _git(["worktree", "remove", "--force", str(tree)], root)
            _git(["worktree", "prune"], root)
