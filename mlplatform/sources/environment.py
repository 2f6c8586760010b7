"""A source's own Python environment, made from its hash lock and cached by the lock's sha256.

The native runner trains in it, `invoke data` generates the channels in it and `invoke serve`
serves the source's models in it: a model runs where it was trained. Environments are content
addressed (one per lock and interpreter), so they are shared between checkouts and state folders
and made once: under MLPLATFORM_ENVIRONMENTS, else the user's cache folder
(XDG_CACHE_HOME, else ~/.cache) in mlplatform/environments. uv installs exactly the lock
(`uv pip sync --require-hashes`) from its own cache, which the kit's install already filled.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlplatform.child_env import inherited_environment
from mlplatform.errors import SourceError
from mlplatform.reporting import Reporter
from mlplatform.sources.manifest import HELPER_ROOT, Source, check_lock

__all__ = [
    "environments_root",
    "locked_environment",
    "made_environment",
    "run_checked",
    "source_python",
    "source_variables",
]

_COMPLETE = ".mlp-complete"
# What uv needs of the caller's environment to reach the package index as the kit's own install
# did (a proxy, a corporate CA) and to find its cache; nothing else reaches it.
_UV_SETTINGS = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "XDG_CACHE_HOME",
)


def environments_root() -> Path:
    """Where source environments are cached (see the module's docstring)."""
    named = os.environ.get("MLPLATFORM_ENVIRONMENTS")
    if named:
        return Path(named)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mlplatform" / "environments"


# Bumped when the way an environment is made changes, so older ones are not reused.
_LAYOUT = "2"


def _key(lock_sha256: str) -> str:
    interpreter = f"{sys.version_info.major}.{sys.version_info.minor}"
    made = f"{lock_sha256}\n{interpreter}\n{_LAYOUT}"
    return hashlib.sha256(made.encode()).hexdigest()[:24]


def made_environment(lock_sha256: str) -> Path | None:
    """The interpreter of the cached environment of the lock with this sha256, if it is made.

    Whichever source's lock it was made from: the same lock bytes, the same environment.
    """
    root = environments_root() / _key(lock_sha256)
    marker = root / _COMPLETE
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == lock_sha256:
        return root / "bin" / "python"
    return None


def run_checked(
    cmd: list[str],
    env: dict[str, str],
    what: str,
    error: type[Exception] = SourceError,
    timeout: float = 1800,
    cwd: Path | None = None,
) -> None:
    """Run `cmd` to its end; `error` with `what` and the command's last line if it fails."""
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise error(f"{what} failed: {lines[-1][:300]}")


def _uv(args: list[str], what: str) -> None:
    uv = Path(sys.executable).parent / "uv"
    settings = {k: v for k, v in os.environ.items() if k.startswith("UV_") or k in _UV_SETTINGS}
    run_checked([str(uv), *args], {**inherited_environment(), **settings}, what)


def locked_environment(root: Path, lock: Path, label: str, reporter: Reporter) -> Path:
    """root/bin/python of a virtual environment holding exactly `lock`, made unless it is.

    An environment counts as made when its marker names the lock's sha256; otherwise (none yet,
    an older lock, an interrupted make) it is removed and made again, by one caller at a time.
    """
    python = root / "bin" / "python"
    marker = root / _COMPLETE
    want = hashlib.sha256(lock.read_bytes()).hexdigest()

    def made() -> bool:
        return marker.is_file() and marker.read_text(encoding="utf-8").strip() == want

    if made():
        return python
    # One maker per environment; a second caller waits and then finds it made. The guard lives
    # in the cache folder, never beside an environment that sits in a checkout.
    guards = environments_root()
    guards.mkdir(parents=True, exist_ok=True)
    guard_name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    with open(guards / f".{guard_name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if made():
            return python
        shutil.rmtree(root, ignore_errors=True)  # an interrupted make leaves no half environment
        reporter.step(f"making the environment of {label} from its lock ({root})")
        what = f"making the environment of {label}"
        _uv(["venv", "--quiet", "--python", sys.executable, str(root)], what)
        _uv(
            [
                "pip",
                "sync",
                "--quiet",
                "--require-hashes",
                # Once here: the jobs run with PYTHONDONTWRITEBYTECODE (no __pycache__ in a
                # team's folder), and without compiled files every process of a job compiles
                # mlflow, pandas and the rest again (3.5 s more per import of them here).
                "--compile-bytecode",
                "--python",
                str(python),
                str(lock),
            ],
            f"{what} (uv pip sync {lock.name})",
        )
        marker.write_text(want + "\n", encoding="utf-8")
        reporter.done(f"environment of {label} ready")
    return python


def source_python(source: Source, reporter: Reporter) -> Path:
    """The interpreter of the source's environment, made first if this lock has none yet."""
    check_lock(source)
    return locked_environment(
        environments_root() / _key(source.lock_sha256()), source.lock, source.label, reporter
    )


def source_variables(source: Source) -> dict[str, str]:
    """What a process of the source's environment needs: the source and the kit on its path.

    The kit's folder holds the helper (mlp_training) and the scoring server.
    """
    return {
        "PYTHONPATH": os.pathsep.join([str(source.root), str(HELPER_ROOT)]),
        "MLP_LOCK_FILE": str(source.lock),
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
