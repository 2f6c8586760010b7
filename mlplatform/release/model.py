"""Release the gated champion of one registry to a cloud environment's registry.

The `model` step of `invoke deploy`: the source registry's `champion` (moved there only by the
promotion gate, `invoke champion`) is promoted with mlflow's client through
mlplatform.registry.promotion (copied, verified file by file, registered once), then made
`champion` in the target registry, which the endpoint step deploys. The MLflow user that training
jobs and endpoints log in as is ensured with the password of the environment's client secret, so a
freshly deployed registry is usable at once.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from mlplatform.cloud import aws
from mlplatform.config import Environment
from mlplatform.local.runtimes.base import Reporter
from mlplatform.paths import StatePaths
from mlplatform.registry.access import registry_for
from mlplatform.registry.promotion import Registry, promote
from mlplatform.registry.users import ensure_user
from mlplatform.serving.local import resolve_version

__all__ = ["release_champion"]

ALIAS = "champion"


def release_champion(
    env: Environment, source_env: str, paths: StatePaths, reporter: Reporter
) -> tuple[bool, str]:
    """Promote `source_env`'s champion to `env` and point `env`'s champion at it.

    Returns (changed, detail); changed is False when the version was promoted before, is already
    champion there, and the client user already logs in.
    """
    source, target = registry_for(source_env, paths), registry_for(env.name, paths)
    name = env.model_name
    with source.client() as client:
        version = resolve_version(client, name, ALIAS, None)
    result = promote(source, target, name, version, reporter)
    with target.client() as client:
        try:
            current: str | None = str(client.get_model_version_by_alias(name, ALIAS).version)
        except MlflowException:
            current = None
        moved = current != result.target_version
        if moved:
            client.set_registered_model_alias(name, ALIAS, result.target_version)
    user = _ensure_client_user(env, target)
    detail = (
        f"{name} {source_env} v{version} -> {env.name} v{result.target_version} "
        f"({'registered' if result.created else 'already promoted'}; "
        f"{ALIAS} {'moved' if moved else 'unchanged'}; client user {user})"
    )
    return result.created or moved or user != "unchanged", detail


def _ensure_client_user(env: Environment, target: Registry) -> str:
    login = aws.json_secret(env, env.client_secret_name, "MLflow client")
    return ensure_user(
        target.tracking_uri,
        (target.username, target.password),
        (login["username"], login["password"]),
    )
