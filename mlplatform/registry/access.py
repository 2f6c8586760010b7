"""Promotion and emulation as the tasks call them: resolve each environment's registry.

A cloud environment's registry is found the way the cloud path finds it everywhere: its URL from
MLPLATFORM_MLFLOW_URL_<ENV> when set (an emulation, or a tunnel to a private ALB), else from the
MLflow stack's MlflowUrl output; the admin credentials from that environment's Secrets Manager
secret through boto3's own chain (AWS_ENDPOINT_URL points it at an emulator).
"""

from __future__ import annotations

from mlplatform.cloud import aws
from mlplatform.cloud.stack_outputs import mlflow_url
from mlplatform.config import load_environment
from mlplatform.emulator.environment import Emulation
from mlplatform.errors import PlatformError
from mlplatform.local.access import local_stack
from mlplatform.local.runtimes.base import Reporter
from mlplatform.paths import StatePaths
from mlplatform.registry.promotion import PromotionResult, Registry, promote

__all__ = ["emulate", "promote_version", "registry_for", "stop_emulation"]


def registry_for(env_name: str, paths: StatePaths) -> Registry:
    """The registry of an environment, logged in as its admin."""
    env = load_environment(env_name)
    if env.name == "local":
        creds, endpoints = local_stack(env, paths, services=("mlflow",))
        return Registry("local", endpoints.tracking_uri, creds.admin_username, creds.admin_password)
    url = mlflow_url(env, aws.client("cloudformation", region=env.region))
    admin = aws.json_secret(env, env.admin_secret_name, "MLflow admin")
    return Registry(env.name, url, admin["username"], admin["password"])


def promote_version(
    paths: StatePaths, model: str | None, version: str, source: str, target: str, reporter: Reporter
) -> PromotionResult:
    """Promote `model` version `version` from `source` to `target` (registry.promotion)."""
    if source == target:
        raise PlatformError(f"--from and --to are both {source!r}")
    name = model or load_environment(source).model_name
    return promote(
        registry_for(source, paths), registry_for(target, paths), name, version, reporter
    )


def emulate(env_name: str, paths: StatePaths, reporter: Reporter) -> dict[str, str]:
    """Start an emulated cloud environment; return the variables that point the kit at it."""
    emulation = Emulation.named(env_name, paths)
    emulation.up(reporter)
    return emulation.client_environment()


def stop_emulation(env_name: str, paths: StatePaths, volumes: bool) -> bool:
    """Stop an emulated environment; True if it was running."""
    return Emulation.named(env_name, paths).down(volumes)
