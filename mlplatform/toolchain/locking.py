"""Hash-locked requirements files, one per dependency group, that name no index or host.

`uv pip compile --generate-hashes` writes no index URL unless asked to, unlike uv.lock, which
records the index: these files are the locks the project commits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import PlatformError

__all__ = ["GROUPS", "compile_lock", "lock_all"]

# group -> whether the project's own dependencies (the kit) are included. A training source's
# environment is locked from its own requirements.in (mlplatform.sources.lock).
GROUPS = {"server": False, "local-container": False, "dev": True}
UV_VERSION = "0.13.9"


def compile_lock(args: list[str], output: Path, command: str = "invoke lock") -> None:
    """`uv pip compile --generate-hashes` of `args` into `output`; PlatformError on failure."""
    uv = Path(sys.executable).parent / "uv"
    cmd = [
        str(uv),
        "pip",
        "compile",
        *args,
        "--generate-hashes",
        "--python-version",
        "3.11",
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--no-header",
        "--quiet",
        "--custom-compile-command",
        command,
        "-o",
        str(output),
    ]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PlatformError(f"uv pip compile failed for {output.name}: {result.stderr.strip()}")
    if "://" in output.read_text(encoding="utf-8"):
        raise PlatformError(f"{output.name} names a URL; lock files must not")


def lock_all() -> list[Path]:
    """Write requirements/<group>.txt for each group and requirements/bootstrap.txt (uv)."""
    out_dir = REPO_ROOT / "requirements"
    written = []
    for group, with_project in GROUPS.items():
        target = out_dir / f"{group}.txt"
        args = [f"--group=pyproject.toml:{group}"] + (["pyproject.toml"] if with_project else [])
        compile_lock(args, target)
        written.append(target)
    bootstrap = out_dir / "bootstrap.txt"
    spec = out_dir / "bootstrap.in"
    spec.write_text(f"uv=={UV_VERSION}\n", encoding="utf-8")
    try:
        compile_lock([str(spec), "--no-annotate"], bootstrap)
    finally:
        spec.unlink()
    written.append(bootstrap)
    return written
