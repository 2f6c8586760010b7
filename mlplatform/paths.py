"""Where the local stack keeps its data, logs, run files and generated credentials.

The root is MLPLATFORM_HOME if set, else `.mlplatform/` in the checkout (git-ignored). Everything
under it is private to the user (0700 folders, 0600 secret files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import REPO_ROOT

__all__ = ["StatePaths", "state_paths"]


@dataclass(frozen=True)
class StatePaths:
    """The layout of the state folder."""

    root: Path

    @property
    def data(self) -> Path:
        """Persistent service data (database files, object store volumes)."""
        return self.root / "data"

    @property
    def logs(self) -> Path:
        """One log file per service."""
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Supervisor config, socket and pid; the auth ini the server writes."""
        return self.root / "run"

    @property
    def secrets(self) -> Path:
        """Generated credentials and the files services read them from (0600)."""
        return self.root / "secrets"

    @property
    def runtime_file(self) -> Path:
        """Records which runtime brought the stack up, so down/status/logs address the same one."""
        return self.root / "runtime.json"

    def log(self, service: str) -> Path:
        """The log file of one service."""
        return self.logs / f"{service}.log"

    def ensure(self) -> StatePaths:
        """Create the folders with private permissions; return self."""
        for folder in (self.root, self.data, self.logs, self.run, self.secrets):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        return self


def state_paths() -> StatePaths:
    """The state folder for this checkout (or MLPLATFORM_HOME)."""
    return StatePaths(Path(os.environ.get("MLPLATFORM_HOME") or REPO_ROOT / ".mlplatform"))
