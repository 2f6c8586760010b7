"""An emulated AWS account for one cloud environment: what a release needs before `deploy`.

`invoke emulate --env prod --account` runs the kit's AWS server (aws_server.py: moto with the
fixes CDK deploys need and strict IAM) as the environment's account, then makes it ready the way
a platform team makes a real account ready:

    server      `python -m mlplatform.emulator.aws_server` as account [prod] account, on
                [prod.ports] aws; one-off ECS tasks (the migration) finish at once, exit code 0
    bootstrap   `cdk bootstrap aws://<account>/<region>` with the pinned CDK CLI
    certificate an ACM certificate for [prod.mlflow] domain_name, issued at once (the emulator
                checks no DNS), which `invoke deploy` finds by that name

The account lives in the server's memory: stopping the emulation forgets it, and the next
`emulate --account` starts an empty account again (bootstrap and certificate included).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import botocore.exceptions
import requests

from mlplatform.config import REPO_ROOT, Environment, config_path
from mlplatform.errors import EmulatorError
from mlplatform.local.supervisor import Program
from mlplatform.reporting import Reporter

__all__ = [
    "AUTHORIZATIONS_VARIABLE",
    "BOOTSTRAP_STACK",
    "MODELS_VARIABLE",
    "account_program",
    "ensure_bootstrapped",
    "ensure_certificate",
    "finish_one_off_tasks",
]

# Where the strict server appends each IAM decision it makes (a JSON line each).
AUTHORIZATIONS_VARIABLE = "MLP_EMULATOR_AUTHORIZATIONS"
# Where it unpacks the models its endpoints serve (sagemaker_runtime.py).
MODELS_VARIABLE = "MLP_EMULATOR_MODELS"
BOOTSTRAP_STACK = "CDKToolkit"


# Where source environments are cached (mlplatform.sources.environment).
_SHARED = ("MLPLATFORM_ENVIRONMENTS", "XDG_CACHE_HOME")


def account_program(env: Environment, port: int, root: Path) -> Program:
    """The supervised AWS server that is `env`'s account, its files under `root`.

    IAM decisions go to root/authorizations.jsonl, the endpoints' models to root/endpoint-models.
    """
    command = [sys.executable, "-m", "mlplatform.emulator.aws_server", "-H", "127.0.0.1"]
    return Program(
        "aws",
        [*command, "-p", str(port)],
        {
            "MOTO_ACCOUNT_ID": env.account,
            # ACM validates by DNS records under the domain; nothing here can answer for it.
            "MOTO_ACM_VALIDATION_WAIT": "0",
            AUTHORIZATIONS_VARIABLE: str(root / "authorizations.jsonl"),
            MODELS_VARIABLE: str(root / "endpoint-models"),
            "PYTHONPATH": str(REPO_ROOT),
            # Its endpoints serve in the environments of their images' locks: the same cache
            # and configuration as the kit's own commands (sagemaker_runtime.py).
            "MLPLATFORM_CONFIG": str(config_path()),
            **{k: os.environ[k] for k in _SHARED if k in os.environ},
        },
    )


def finish_one_off_tasks(endpoint: str) -> None:
    """Make ECS tasks advance to STOPPED (exit code 0) when described.

    moto runs no container: by default its tasks stay RUNNING for ever. This is moto's own
    state-manager API, so a RunTask followed by the tasks_stopped waiter completes.
    """
    try:
        requests.post(
            f"{endpoint}/moto-api/state-manager/set-transition",
            json={"model_name": "ecs::task", "transition": {"progression": "immediate"}},
            timeout=10,
        ).raise_for_status()
    except requests.RequestException as exc:
        raise EmulatorError(f"the emulated account at {endpoint} did not answer: {exc}") from exc


def ensure_bootstrapped(
    env: Environment, cloudformation: Any, variables: dict[str, str], reporter: Reporter
) -> bool:
    """CDK-bootstrap the account unless its bootstrap stack exists; True if it ran."""
    from mlplatform.release.cdk_cli import cdk_command
    from mlplatform.toolchain.node_deps import ensure_node_modules

    try:
        cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)
        return False
    except botocore.exceptions.ClientError as exc:
        if "does not exist" not in str(exc):
            raise EmulatorError(f"cannot read the emulated account's stacks: {exc}") from exc
    ensure_node_modules()
    reporter.step(f"bootstrapping aws://{env.account}/{env.region} for the CDK")
    cdk_command(env, "bootstrap", extra_env=variables, output_to_stderr=True)
    return True


def ensure_certificate(acm: Any, domain: str) -> tuple[str, bool]:
    """The ARN of an issued certificate for `domain`, requested if there is none; (arn, new)."""
    from mlplatform.cloud.certificates import issued_certificate

    found = issued_certificate(acm, domain)
    if found:
        return found, False
    try:
        requested = acm.request_certificate(DomainName=domain, ValidationMethod="DNS")
        arn = str(requested["CertificateArn"])
        acm.get_waiter("certificate_validated").wait(
            CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.WaiterError) as exc:
        raise EmulatorError(f"could not issue a certificate for {domain}: {exc}") from exc
    return arn, True
