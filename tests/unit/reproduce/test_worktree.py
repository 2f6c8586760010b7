"""The recorded commit's source, in a worktree that leaves the user's own tree alone (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlplatform.errors import ReproduceError
from mlplatform.reproduce.worktree import source_at_commit


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "models" / "churn").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "models" / "churn" / "train.py").write_text("ROUNDS = 100\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_the_commit_is_checked_out_beside_the_work_tree_and_removed_after(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD")
    source = repo / "models" / "churn"
    (source / "train.py").write_text("ROUNDS = 999\n")  # an uncommitted edit since
    with source_at_commit(str(source), commit) as folder:
        assert (folder / "train.py").read_text() == "ROUNDS = 100\n"
        assert folder.name == "churn" and repo not in folder.parents
    assert not folder.exists()
    assert (source / "train.py").read_text() == "ROUNDS = 999\n"
    assert git(repo, "worktree", "list").count("\n") == 0  # only the main work tree


def test_a_commit_the_repository_lacks_is_one_line(repo: Path) -> None:
    with (
        pytest.raises(ReproduceError, match="commit 0123456789ab is not in the repository"),
        source_at_commit(str(repo / "models" / "churn"), "0123456789ab" * 3 + "0123"),
    ):
        pass


def test_a_source_the_commit_lacks_is_one_line(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD")
    (repo / "models" / "later").mkdir()
    with (
        pytest.raises(ReproduceError, match="has no folder models/later"),
        source_at_commit(str(repo / "models" / "later"), commit),
    ):
        pass
    assert git(repo, "worktree", "list").count("\n") == 0


def test_a_folder_outside_git_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "loose").mkdir()
    with (
        pytest.raises(ReproduceError, match="is not in a git work tree"),
        source_at_commit(str(tmp_path / "loose"), "a" * 40),
    ):
        pass


def test_a_relative_source_is_the_kits_own_checkout() -> None:
    """Sources configured inside the kit's repository are recorded relative to it."""
    from mlplatform.reproduce.worktree import _repository

    root, inside = _repository("examples/fraud")
    assert (root / inside / "source.toml").is_file()
    assert str(inside).endswith("examples/fraud")


def test_a_git_that_hangs_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def hang(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("git", 120)

    monkeypatch.setattr(subprocess, "run", hang)
    checkout = source_at_commit(str(tmp_path), "0" * 40)
    with pytest.raises(ReproduceError, match=r"^git rev-parse took over 120 s in .*nothing"):
        checkout.__enter__()
