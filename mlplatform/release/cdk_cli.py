"""Run the pinned CDK CLI (package.json) against the app, for the invoke tasks.

    from mlplatform.release.cdk_cli import cdk_command, synth
    synth(staging, image_digest="sha256:...")      # invoke synth --env staging
    cdk_command(staging, "diff")                   # invoke diff --env staging
    cdk_command(prod, "destroy", confirm="prod")   # invoke destroy --env prod --confirm prod

The CLI runs from infra/ (its cdk.json) through ``npx --no-install``, so it is the version locked
in package-lock.json on Node 22 (the ``node`` package puts its binary first on npx's PATH). The
app runs with this interpreter. Endpoint variables such as AWS_ENDPOINT_URL are passed through
unchanged: the emulated deploy is the same command with another endpoint. The library never
prints; the CLI's own output goes to the caller's terminal.

Every call runs with the CLI's own traffic off (NO_PHONE_HOME_ENV and ``--no-notices``): the only
hosts it talks to are the AWS endpoints of the command itself.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from mlplatform.config import REPO_ROOT, Environment
from mlplatform.errors import CdkCommandError, ConfigError, ConfirmationRequiredError
from mlplatform.release.cdk_context import context_argv, is_placeholder, resolve

__all__ = [
    "NO_PHONE_HOME_ENV",
    "Action",
    "CdkCommandError",
    "CdkResult",
    "ConfirmationRequiredError",
    "cdk_argv",
    "cdk_command",
    "check_overrides",
    "synth",
]

INFRA_DIR = REPO_ROOT / "infra"

Action = Literal["synth", "diff", "deploy", "destroy", "bootstrap", "list"]

# What the CLI sends or fetches on its own, none of which a deploy needs: usage telemetry, and a
# query of the npm registry for a newer CLI (made when its output is a terminal). AWS's notices
# are turned off on the command line (--no-notices), which also covers bootstrap: it runs outside
# infra/ and so does not read infra/cdk.json's "notices": false.
NO_PHONE_HOME_ENV = {"CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_DISABLE_VERSION_CHECK": "true"}
NO_NOTICES = "--no-notices"


@dataclass(frozen=True)
class CdkResult:
    """What a finished CLI run reports back: its argv, exit code and wall time."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float


def requires_confirmation(env: Environment) -> bool:
    """prod, and any environment whose database is deletion-protected, must be named to destroy."""
    return env.name == "prod" or env.database.deletion_protection


def cdk_argv(
    env: Environment,
    action: Action,
    *,
    output: str | os.PathLike[str] | None = None,
    approve: bool = False,
    extra: Sequence[str] = (),
    **overrides: str | None,
) -> list[str]:
    """The full command line for ``action`` on ``env`` (pure: nothing runs).

    ``overrides`` are mlplatform.release.cdk_context.resolve()'s keywords, passed as context.
    ``approve`` skips the CLI's interactive prompts (security-change approval on deploy, the
    "are you sure" of destroy); without a terminal the CLI would otherwise fail.
    """
    app = f"{shlex.quote(sys.executable)} -m infra.app"
    argv = ["npx", "--no-install", "cdk", action]
    if action == "bootstrap":
        # The target is named, so the CLI needs no app (and no image digest) to bootstrap.
        return [*argv, f"aws://{env.account}/{env.region}", NO_NOTICES, *extra]
    argv += ["--app", app, "--context", f"env={env.name}", *context_argv(**overrides)]
    if output is not None:
        argv += ["--output", str(output)]
    if action in ("deploy", "destroy", "diff"):
        argv.append("--all")  # the app holds only this environment's stacks (env context)
    if action == "deploy" and approve:
        argv += ["--require-approval", "never"]
    if action == "destroy" and approve:
        argv.append("--force")
    if action == "synth":
        argv.append("--quiet")  # templates go to the cloud assembly, not the terminal
    return [*argv, NO_NOTICES, *extra]


def check_overrides(env: Environment, action: Action, **overrides: str | None) -> None:
    """ConfigError (one line) for settings the app would refuse, or a placeholder deployed.

    The app resolves the same settings inside the CLI, where a ConfigError can only end as a
    traceback in its output; checked here it is one line before anything starts.
    """
    if action == "bootstrap":
        return
    resolve(env, **overrides)
    stood_in = [name for name, value in overrides.items() if is_placeholder(name, value)]
    if action == "deploy" and stood_in:
        raise ConfigError(
            f"the {stood_in[0].replace('_', ' ')} is a placeholder (for looking at a synth "
            "only); deploy a real one"
        )


def cdk_command(
    env: Environment,
    action: Action,
    *,
    confirm: str | None = None,
    approve: bool = False,
    output: str | os.PathLike[str] | None = None,
    extra: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    output_to_stderr: bool = False,
    **overrides: str | None,
) -> CdkResult:
    """Run ``cdk <action>`` for one environment; CdkCommandError if it fails.

    ``destroy`` of a protected environment (see requires_confirmation) needs ``confirm`` equal
    to the environment's name, and raises ConfirmationRequiredError before anything runs.
    ``output_to_stderr`` sends the CLI's standard output (stack outputs) to standard error, for
    callers whose own standard output is machine-readable.
    """
    if action == "destroy" and requires_confirmation(env) and confirm != env.name:
        raise ConfirmationRequiredError(
            f"refusing to destroy {env.name}: confirm by passing --confirm {env.name}"
        )
    check_overrides(env, action, **overrides)
    argv = cdk_argv(
        env,
        action,
        output=output,
        approve=approve or (action == "destroy" and confirm == env.name),
        extra=extra,
        **overrides,
    )
    # Bootstrap runs outside infra/ so the CLI does not synthesize the app from its cdk.json.
    return _run(
        argv,
        extra_env,
        cwd=REPO_ROOT if action == "bootstrap" else INFRA_DIR,
        stdout=sys.stderr if output_to_stderr else None,
    )


def synth(
    env: Environment,
    *,
    image_digest: str | None = None,
    certificate_arn: str | None = None,
    output: str | os.PathLike[str] | None = None,
) -> CdkResult:
    """``cdk synth`` one environment through the CLI (cdk-nag runs; findings fail it)."""
    return cdk_command(
        env, "synth", image_digest=image_digest, certificate_arn=certificate_arn, output=output
    )


def _run(
    argv: list[str],
    extra_env: Mapping[str, str] | None,
    cwd: Path = INFRA_DIR,
    stdout: TextIO | None = None,
) -> CdkResult:
    if shutil.which(argv[0]) is None:
        raise CdkCommandError("npx not found: install Node.js, then run `npm ci` at the repo root")
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        raise CdkCommandError("the pinned CDK CLI is not installed: run `npm ci` at the repo root")
    env = dict(os.environ)
    # The app imports infra/ and mlplatform/ from the checkout, whatever the CLI's cwd.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra_env or {})
    # Last, so neither the caller's shell nor extra_env turns the CLI's own traffic back on.
    env.update(NO_PHONE_HOME_ENV)
    started = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=stdout, check=False)
    except OSError as exc:
        raise CdkCommandError(f"could not start the CDK CLI: {exc}") from exc
    result = CdkResult(tuple(argv), done.returncode, time.monotonic() - started)
    if done.returncode != 0:
        raise CdkCommandError(
            f"`cdk {argv[3]}` failed with exit code {done.returncode}; see its output above"
        )
    return result
