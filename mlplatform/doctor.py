"""`invoke doctor`: what this machine has for the kit, one line per check, and what to do.

    report = diagnose(local, [staging, prod])    # Targets from mlplatform.target
    report.ok                                    # False when any check failed

A check `fails` when the local stack cannot come up without it (Python, the kit's own tools,
free ports, disk); it `warns` when only some tasks need it (Node and the CDK CLI for the cloud
tasks, a container engine for `build` and the compose runtime, a MySQL-protocol server without
which `up` falls back to SQLite, AWS credentials). Nothing here prints a secret: credentials are
reported by where they come from, never by value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from mlplatform.config import REPO_ROOT
from mlplatform.errors import EngineMissingError, PlatformError
from mlplatform.images.engine import find_engine
from mlplatform.local.database_admin import find_server
from mlplatform.local.lifecycle import open_runtime, recorded_runtime
from mlplatform.local.services import SERVICES
from mlplatform.readiness import port_open
from mlplatform.reporting import JsonFields
from mlplatform.target import Target
from mlplatform.toolchain.system_deps import CONTAINERS, DATABASE, install_command

__all__ = ["FAIL", "OK", "WARN", "Check", "Diagnosis", "diagnose", "require_ready"]

OK, WARN, FAIL = "ok", "warn", "fail"
# The images and their build cache take a few GiB; the stack's own data far less.
DISK_FAIL_GIB, DISK_WARN_GIB = 2, 10
# The CDK CLI supports Node.js 22 and 24; 20 still runs it, with an end-of-life warning.
NODE_MAJOR = 22


@dataclass(frozen=True)
class Check(JsonFields):
    """One finding: what was checked, how it stands, and what was found or what to do."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    """Every check, in the order a newcomer meets them."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return all(c.status != FAIL for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        """The `--json` object: ok, checks."""
        return {"ok": self.ok, "checks": [c.as_json() for c in self.checks]}


def diagnose(local: Target, clouds: Sequence[Target]) -> Diagnosis:
    """Run every check against this machine, the local stack's settings and the clouds'."""
    stack_up = _stack_up(local)
    checks = [
        _python(),
        _kit_tools(),
        _node(),
        _cdk_cli(),
        _engine(),
        _database_server(local),
        *_ports(local, stack_up is not None),
        _disk(local.paths.root),
        *(_aws(cloud) for cloud in clouds),
        _stack(stack_up),
    ]
    return Diagnosis(tuple(checks))


def require_ready(local: Target) -> None:
    """What `up` checks first: the doctor's own line, not a trace, when the stack cannot start.

    The kit's tools and the disk; ports are checked by `up` itself, service by service, since
    a half-running stack holds some of them.
    """
    for check in (_kit_tools(), _disk(local.paths.root)):
        if check.status == FAIL:
            raise PlatformError(f"{check.name}: {check.detail} (`./kit doctor` checks the rest)")


def _python() -> Check:
    # ./kit refuses an older Python before this can run; the line says which one runs the kit.
    return Check("python", OK, f"{'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})")


def _kit_tools() -> Check:
    # Installed by ./kit from the hash-locked requirements, next to this interpreter.
    here = Path(sys.executable).parent
    missing = [name for name in ("uv", "weed", "moto_server") if not (here / name).exists()]
    if missing:
        return Check("kit tools", FAIL, f"{', '.join(missing)} missing from {here}: rerun ./kit")
    return Check("kit tools", OK, f"uv, SeaweedFS (weed) and moto in {here}")


def _version_of(program: str) -> str:
    done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else ""


def _node() -> Check:
    node = shutil.which("node")
    version = _version_of(node) if node else ""
    if not version:
        return Check(
            "node",
            WARN,
            f"not found: the cloud tasks (synth, deploy) need Node.js {NODE_MAJOR} or newer",
        )
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < NODE_MAJOR:
        return Check(
            "node", WARN, f"{version}: end of life for the CDK CLI; use Node.js {NODE_MAJOR}+"
        )
    return Check("node", OK, version)


def _cdk_cli() -> Check:
    if (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        return Check("cdk cli", OK, "the pinned CDK CLI is installed (node_modules)")
    return Check("cdk cli", WARN, "not installed yet: the first synth or deploy runs `npm ci`")


def _engine() -> Check:
    try:
        engine = find_engine()
    except EngineMissingError:
        packages = install_command(CONTAINERS)
        return Check(
            "container engine",
            WARN,
            f"none answers: `build` and the compose runtime need one ({packages})",
        )
    return Check("container engine", OK, f"{engine.kind} ({engine.program})")


def _database_server(local: Target) -> Check:
    wanted = local.env.database
    server = find_server(wanted.engine)
    if server is None:
        return Check(
            "database server",
            WARN,
            "no MySQL-protocol server: `up` falls back to SQLite (parity reduced); "
            f"{install_command([DATABASE])}",
        )
    found = f"{server.flavour} {server.version} ({server.binary})"
    if server.flavour != wanted.engine or not server.version.startswith(wanted.version + "."):
        return Check(
            "database server",
            WARN,
            f"{found}, while environments.toml says {wanted.engine} {wanted.version}: "
            "`invoke parity` reports the difference",
        )
    return Check("database server", OK, found)


def _ports(local: Target, stack_up: bool) -> list[Check]:
    if stack_up:
        return [Check("ports", OK, "in use by the local stack itself")]
    taken = []
    for service in SERVICES:
        port = service.host_port(local.env)
        # SeaweedFS also binds the next four ports and port + 10000 (gRPC).
        extra = (
            [port + 1, port + 2, port + 3, port + 4, port + 10000] if service.name == "s3" else []
        )
        taken += [f"{p} ({service.name})" for p in (port, *extra) if port_open(p)]
    if taken:
        return [
            Check(
                "ports",
                FAIL,
                f"taken by another process: {', '.join(taken)}; stop it or change "
                f"[{local.env.name}.ports] in environments.toml",
            )
        ]
    return [Check("ports", OK, "every port of the local stack is free")]


def _disk(root: Path) -> Check:
    existing = next(p for p in (root, *root.parents) if p.exists())
    free = shutil.disk_usage(existing).free / 2**30
    where = f"{free:.1f} GiB free at {existing}"
    if free < DISK_FAIL_GIB:
        return Check("disk", FAIL, f"{where}: the stack needs at least {DISK_FAIL_GIB} GiB")
    if free < DISK_WARN_GIB:
        return Check("disk", WARN, f"{where}: building the images wants {DISK_WARN_GIB} GiB")
    return Check("disk", OK, where)


def _aws(cloud: Target) -> Check:
    name = f"aws ({cloud.name})"
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    session = boto3.Session(region_name=cloud.env.region)
    try:
        credentials = session.get_credentials()
    except Exception as exc:  # botocore raises many kinds for a broken profile or config
        return Check(name, WARN, f"credentials cannot be read: {str(exc).splitlines()[0]}")
    where = f"an emulator at {endpoint}" if endpoint else f"AWS account {cloud.env.account}"
    if credentials is None:
        return Check(
            name,
            WARN,
            f"no credentials: tasks with --env {cloud.name} need them for {where} "
            "(environment variables, a profile, or SSO)",
        )
    # Where they come from (env, shared-credentials-file, sso, ...), never their value.
    return Check(
        name, OK, f"credentials from {credentials.method}, region {cloud.env.region}, {where}"
    )


def _stack_up(local: Target) -> str | None:
    """The runtime the local stack runs under, or None when it is not up."""
    runtime = recorded_runtime(local.paths)
    if runtime is None:
        return None
    try:
        status = open_runtime(local.env, local.paths, runtime).status()
    except PlatformError:
        return None
    return runtime if status.up else None


def _stack(runtime: str | None) -> Check:
    if runtime is None:
        return Check("local stack", WARN, "not up: `./kit up` starts it")
    return Check("local stack", OK, f"up ({runtime} runtime): `./kit status` shows each service")
