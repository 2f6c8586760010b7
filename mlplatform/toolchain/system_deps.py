"""System packages the stack and the test suite need, installed with apt when running as root.

Without root (or with MLPLATFORM_NO_APT=1) nothing is installed: the caller gets the exact command
to run instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from mlplatform.errors import SystemDependencyError

__all__ = [
    "BROWSER",
    "COMPOSE",
    "CONTAINERS",
    "DATABASE",
    "STRACE",
    "SystemPackage",
    "ensure",
    "missing",
]


@dataclass(frozen=True)
class SystemPackage:
    """A Debian package and the programs that show it is installed (any one suffices)."""

    package: str
    programs: tuple[str, ...]
    purpose: str


DATABASE = SystemPackage(
    "mariadb-server", ("mariadbd", "mysqld"), "the local MySQL-protocol database"
)
COMPOSE = SystemPackage(
    "docker-compose", ("docker-compose",), "validating the compose file offline"
)
BROWSER = SystemPackage("chromium", ("chromium",), "checking the MLflow UI in a real browser")
STRACE = SystemPackage("strace", ("strace",), "recording the CDK CLI's outbound connections")
# The container lane: rootful Podman and what Debian's podman does not pull in itself. netavark
# fails every RUN step of a build without iptables; debootstrap makes the base image (no registry).
# Programs under /usr/lib/podman are not on PATH: they are looked for by their full path.
CONTAINERS = [
    SystemPackage("podman", ("podman",), "building and running the kit's images"),
    SystemPackage("runc", ("runc",), "the OCI runtime Podman runs containers with"),
    SystemPackage("netavark", ("/usr/lib/podman/netavark",), "container networks"),
    SystemPackage("aardvark-dns", ("/usr/lib/podman/aardvark-dns",), "names on compose networks"),
    SystemPackage("fuse-overlayfs", ("fuse-overlayfs",), "Podman's overlay storage"),
    SystemPackage("slirp4netns", ("slirp4netns",), "Podman's user-mode networking"),
    SystemPackage("iptables", ("iptables",), "netavark's firewall rules"),
    SystemPackage("debootstrap", ("debootstrap",), "making the base image without a registry"),
]


def _installed(pkg: SystemPackage) -> bool:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return any(shutil.which(p, path=path) for p in pkg.programs)


def missing(packages: list[SystemPackage]) -> list[SystemPackage]:
    """The packages whose programs are not on this machine."""
    return [p for p in packages if not _installed(p)]


def can_install() -> bool:
    """True when apt-get may be used here (root, apt present, not disabled)."""
    return (
        os.geteuid() == 0
        and shutil.which("apt-get") is not None
        and os.environ.get("MLPLATFORM_NO_APT") != "1"
    )


def install_command(packages: list[SystemPackage]) -> str:
    """The command a user runs to install the packages themselves."""
    return "sudo apt-get install -y " + " ".join(p.package for p in packages)


def ensure(packages: list[SystemPackage]) -> list[str]:
    """Install what is missing with apt (as root); return the names installed.

    Raises SystemDependencyError with the command to run when it cannot install.
    """
    todo = missing(packages)
    if not todo:
        return []
    if not can_install():
        raise SystemDependencyError(
            f"missing {', '.join(p.package for p in todo)}; run: {install_command(todo)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *(p.package for p in todo)],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SystemDependencyError(f"{' '.join(cmd[:2])} failed: {last[0]}")
    return [p.package for p in todo]
