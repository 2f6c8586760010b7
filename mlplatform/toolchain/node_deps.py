"""The Node side of the toolchain (the pinned CDK CLI): installed from package-lock.json.

`npm ci` runs when node_modules is missing or was installed from another lock, so a fresh clone
and a changed lock both get exactly the locked CLI, and an unchanged one costs nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

from mlplatform.config import REPO_ROOT
from mlplatform.errors import SystemDependencyError

__all__ = ["ensure_node_modules"]

_STAMP = REPO_ROOT / "node_modules" / ".kit-lock-sha256"


def ensure_node_modules() -> bool:
    """Run `npm ci` if node_modules does not match package-lock.json; True if it ran."""
    lock = REPO_ROOT / "package-lock.json"
    if not lock.exists():
        return False
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if _STAMP.exists() and _STAMP.read_text().strip() == digest:
        return False
    if shutil.which("npm") is None:
        raise SystemDependencyError(
            "npm is not installed; install Node.js and npm (apt-get "
            "install nodejs npm) to use the CDK tasks"
        )
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemDependencyError(f"npm ci failed: {last[0]}")
    _STAMP.write_text(digest)
    return True
