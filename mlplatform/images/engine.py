"""The container engine the kit drives: Podman or Docker, whichever answers.

MLP_ENGINE names one (a program name or path); otherwise Podman is tried first, then Docker. An
engine that is installed but does not answer (`info` fails: no daemon, no permission) counts as
missing, so the user reads why and what to install instead of a build's first failure.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlplatform.child_env import inherited_environment
from mlplatform.errors import EngineMissingError

__all__ = ["ENGINE_VARIABLES", "Engine", "engine_environment", "find_engine"]

# What an engine reads from the environment: its socket, configuration and runtime dir.
ENGINE_VARIABLES = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "CONTAINERS_CONF",
    "CONTAINER_HOST",
    "XDG_RUNTIME_DIR",
)
CANDIDATES = ("podman", "docker")
INSTALL_HINT = (
    "apt-get install podman runc netavark aardvark-dns fuse-overlayfs slirp4netns iptables "
    "debootstrap (see compose/standins/README.md), or start Docker"
)


def engine_environment() -> dict[str, str]:
    """child_env's allow-list plus the engine's variables: no AWS_*, no MLFLOW_*."""
    env = inherited_environment()
    env.update({k: os.environ[k] for k in ENGINE_VARIABLES if k in os.environ})
    return env


@dataclass(frozen=True)
class Engine:
    """An engine that answered: its program and what kind it is."""

    program: str

    @property
    def kind(self) -> str:
        """`podman` or `docker` (their build and save flags differ)."""
        return "podman" if "podman" in Path(self.program).name else "docker"

    def limit_flags(self) -> list[str]:
        """`run` flags that keep a container's rlimits within what the engine can grant.

        Rootful Podman asks runc for its default rlimits, more than the engine holds on many
        machines ("error setting rlimit ...: operation not permitted"), and Podman lowers its own
        RLIMIT_NPROC to 32768 when it starts: ask for no more than either.
        """
        if self.kind != "podman":
            return []
        flags = []
        for name, limit, cap in (
            ("nofile", resource.RLIMIT_NOFILE, 1_048_576),
            ("nproc", resource.RLIMIT_NPROC, 32_768),
        ):
            hard = resource.getrlimit(limit)[1]
            value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
            flags += ["--ulimit", f"{name}={value}:{value}"]
        return flags

    def run(
        self, args: list[str], timeout: float | None = None, log: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `<engine> args`; output captured, or appended to `log` when one is given."""
        if log is None:
            return subprocess.run(
                [self.program, *args],
                env=engine_environment(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"$ {Path(self.program).name} {' '.join(args)}\n")
            out.flush()
            return subprocess.run(
                [self.program, *args],
                env=engine_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )


def _answers(program: str) -> bool:
    try:
        done = subprocess.run(
            [program, "info"],
            env=engine_environment(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_engine() -> Engine:
    """The engine to use; EngineMissingError (one line, what to install) when none answers."""
    wanted = os.environ.get("MLP_ENGINE")
    tried = [wanted] if wanted else list(CANDIDATES)
    for name in tried:
        program = shutil.which(name, path=engine_environment().get("PATH"))
        if program and _answers(program):
            return Engine(program)
    raise EngineMissingError(
        f"no container engine answers (tried {', '.join(tried)}): {INSTALL_HINT}"
    )
