"""Models between registries: `invoke promote` of one version, and the release of the champion.

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
from mlplatform.errors import PlatformError
from mlplatform.registry.client import Registry
from mlplatform.registry.packaging import resolve_version
from mlplatform.registry.promotion import PromotionResult, promote
from mlplatform.registry.users import ensure_user
from mlplatform.reporting import Reporter
from mlplatform.target import Target

__all__ = ["promote_version", "release_champion"]

ALIAS = "champion"


def release_champion(
    target: Target, source: Target, model: str, reporter: Reporter
) -> tuple[bool, str]:
    """Promote `source`'s champion of `model` to `target` and point `target`'s champion at it.

    Returns (changed, detail); changed is False when the version was promoted before, is already
    champion there, and the client user already logs in.
    """
    env = target.env
    source_registry, target_registry = source.registry(), target.registry()
    name = env.model(model)
    with source_registry.client() as client:
        version = resolve_version(client, name, ALIAS, None)
    result = promote(source_registry, target_registry, name, version, reporter)
    with target_registry.client() as client:
        try:
            current: str | None = str(client.get_model_version_by_alias(name, ALIAS).version)
        except MlflowException:
            current = None
        moved = current != result.target_version
        if moved:
            client.set_registered_model_alias(name, ALIAS, result.target_version)
    user = _ensure_client_user(env, target_registry)
    detail = (
        f"{name} {source.name} v{version} -> {env.name} v{result.target_version} "
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


def promote_version(
    source: Target,
    target: Target,
    model: str | None,
    version: str,
    reporter: Reporter,
    user: str | None = None,
) -> PromotionResult:
    """`invoke promote`: `model` (default: the source's only one) from one registry to another's.

    As `user` in both registries (each its own login), else as each one's admin.
    """
    if source.name == target.name:
        raise PlatformError(f"--from and --to are both {source.name!r}")
    name = source.env.model(model)
    return promote(source.registry(user), target.registry(user), name, version, reporter)
