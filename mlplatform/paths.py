"""Where the local stack keeps its data, logs, run files and generated credentials.

The root is MLPLATFORM_HOME if set, else `.mlplatform/` in the checkout (git-ignored). Everything
under it is private to the user (0700 folders, 0600 secret files).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import PlatformError

__all__ = ["StatePaths", "state_paths"]

# A unix socket's path fits in 107 bytes (sun_path and its NUL). supervisord first binds
# "<socket>.<pid>" and links it into place, so a name must leave room for a pid of up to seven
# digits: a state folder deep in a temporary tree once pushed that over the limit and the
# daemon refused to start, depending on the pid it happened to get.
_SOCKET_PATH_ROOM = 107 - len(".4194304")
_LONGEST_SOCKET_NAME = "supervisor.sock"
# Shared by every user: `_private_folder` creates the kit's folder there 0700 and refuses one it
# did not make.
_LAST_RESORT = Path("/tmp")  # noqa: S108


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
    def short_run(self) -> Path:
        """A private folder with a short path for sockets the run folder's path is too long for.

        One per state folder and user, named from the state folder's path, in the first of the
        user's runtime folder, the temporary folder and /tmp whose path leaves room for a socket
        (tests and CI point TMPDIR deep into their own trees).
        """
        digest = hashlib.sha256(os.fsencode(self.root.resolve())).hexdigest()[:16]
        name = f"mlplatform-{os.getuid()}-{digest}"
        bases = [os.environ.get("XDG_RUNTIME_DIR", ""), tempfile.gettempdir()]
        for base in filter(None, bases):
            if len(os.fsencode(Path(base) / name / _LONGEST_SOCKET_NAME)) <= _SOCKET_PATH_ROOM:
                return Path(base) / name
        return _LAST_RESORT / name

    def socket(self, name: str) -> Path:
        """Where the unix socket `name` lives: the run folder, or `short_run` if it is too long."""
        inside = self.run / name
        if len(os.fsencode(inside)) <= _SOCKET_PATH_ROOM:
            return inside
        return self.short_run / name

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
        if self.socket(_LONGEST_SOCKET_NAME).parent == self.short_run:
            _private_folder(self.short_run)
        return self


def _private_folder(folder: Path) -> None:
    """Create `folder` 0700, or accept it only if it is already ours and closed to others.

    The temporary folder is shared, and a socket in someone else's folder could be taken over.
    """
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PlatformError(
            f"{folder} is not a private folder of this user; remove it and run the command again"
        )


def state_paths() -> StatePaths:
    """The state folder for this checkout (or MLPLATFORM_HOME)."""
    return StatePaths(Path(os.environ.get("MLPLATFORM_HOME") or REPO_ROOT / ".mlplatform"))
