"""Linters as tests: ruff, mypy (strict, pydantic plugin), hadolint, and the lock-file rule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout


def test_mypy() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout


DOCKERFILES = sorted(
    p
    for p in REPO.rglob("Dockerfile")
    if not {".venv", "node_modules", ".mlplatform"} & set(p.parts)
)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_hadolint(dockerfile: Path) -> None:
    result = run(str(BIN / "hadolint"), str(dockerfile))
    assert result.returncode == 0, result.stdout


def test_lock_files_are_hashed_and_name_no_host() -> None:
    kit = sorted((REPO / "requirements").glob("*.txt"))
    assert {p.name for p in kit} >= {"bootstrap.txt", "server.txt", "dev.txt"}
    examples = sorted((REPO / "examples").glob("*/requirements.txt"))
    assert len(examples) >= 1
    locks = kit + examples
    for lock in locks:
        text = lock.read_text(encoding="utf-8")
        assert "://" not in text and "--index-url" not in text, lock.name
        pins = re.findall(r"^[A-Za-z0-9_.\-\[\]]+==\S+ \\$", text, flags=re.M)
        assert pins and text.count("--hash=sha256:") >= len(pins), lock.name


def test_server_image_installs_only_the_server_group() -> None:
    server = (REPO / "requirements" / "server.txt").read_text(encoding="utf-8")
    assert "\nmlflow==" in server and "\npymysql==" in server
    for dev_only in ("pytest==", "moto==", "aws-cdk-lib==", "invoke=="):
        assert f"\n{dev_only}" not in server
