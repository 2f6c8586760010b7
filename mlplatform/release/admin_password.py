"""`invoke rotate-admin --env E`: a new MLflow admin password, in MLflow and in its secret.

MLflow reads the admin secret only when it creates the admin user; after that the password lives
in MLflow's user table, so a Secrets Manager rotation alone would make the secret lie. This
rotates both, in the order that never leaves the admin locked out, using Secrets Manager's
staging labels as the record of where a rotation stands:

    1. a new password is stored as the secret's AWSPENDING version (AWSCURRENT unchanged);
    2. MLflow's users/update-password sets it, logged in with the current password;
    3. AWSPENDING becomes AWSCURRENT.

A run that stopped part way is finished by the next one: it finds the pending version, and asks
MLflow which of the two passwords logs in. The calls are the operator's (secretsmanager:
GetSecretValue, PutSecretValue, UpdateSecretVersionStage on the admin secret, and MLflow's
admin API); no role of the stacks is involved.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from mlplatform.cloud.stack_outputs import mlflow_url
from mlplatform.errors import PlatformError
from mlplatform.readiness import wait_until
from mlplatform.registry.users import can_log_in, set_password
from mlplatform.reporting import JsonFields, Reporter
from mlplatform.target import Target

__all__ = ["Rotation", "rotate_admin_password"]

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"


@dataclass(frozen=True)
class Rotation(JsonFields):
    """What a rotation did: the secret's new version, and whether it finished an earlier run."""

    secret: str
    version: str
    resumed: bool


def rotate_admin_password(target: Target, reporter: Reporter) -> Rotation:
    """Rotate `target`'s MLflow admin password in MLflow and in Secrets Manager."""
    target.cloud_only("the local stack's admin password is in its state folder, not rotated here")
    env = target.env
    name = env.admin_secret_name
    sm = target.client("secretsmanager")
    url = mlflow_url(env, target.client("cloudformation"))
    try:
        current = _version(sm, name, CURRENT)
        pending = _pending(sm, name)
        resumed = pending is not None and pending["VersionId"] != current["VersionId"]
        if pending is None or not resumed:
            pending = _stage_new_password(sm, name, current)
            reporter.done(f"new password staged as {PENDING} of {name}")
        old, new = _login(current), _login(pending)
        if can_log_in(url, new):
            reporter.done("MLflow already takes the new password (an earlier run set it)")
        elif can_log_in(url, old):
            set_password(url, old, new)
            _wait_for_login(url, new, env.mlflow.auth_cache_ttl_seconds)
            reporter.done(f"MLflow's admin password changed at {url}")
        else:
            raise PlatformError(
                f"neither the current nor the pending password of {name} logs in to {url}; "
                "nothing changed"
            )
        sm.update_secret_version_stage(
            SecretId=name,
            VersionStage=CURRENT,
            MoveToVersionId=pending["VersionId"],
            RemoveFromVersionId=current["VersionId"],
        )
        sm.update_secret_version_stage(
            SecretId=name, VersionStage=PENDING, RemoveFromVersionId=pending["VersionId"]
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise PlatformError(f"cannot rotate {name}: {exc}") from exc
    reporter.done(f"{name}: the new password is {CURRENT}")
    return Rotation(name, str(pending["VersionId"]), resumed)


def _version(sm: Any, name: str, stage: str) -> dict[str, Any]:
    return dict(sm.get_secret_value(SecretId=name, VersionStage=stage))


def _pending(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return _version(sm, name, PENDING)
    except sm.exceptions.ResourceNotFoundException:
        return None


def _login(version: dict[str, Any]) -> tuple[str, str]:
    value = json.loads(version["SecretString"])
    return str(value["username"]), str(value["password"])


def _stage_new_password(sm: Any, name: str, current: dict[str, Any]) -> dict[str, Any]:
    value = json.loads(current["SecretString"])
    value["password"] = secrets.token_urlsafe(32)
    token = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=name,
        ClientRequestToken=token,
        SecretString=json.dumps(value),
        VersionStages=[PENDING],
    )
    return {"VersionId": token, "SecretString": json.dumps(value)}


def _wait_for_login(url: str, login: tuple[str, str], cache_seconds: int) -> None:
    # The server caches logins for auth_cache_ttl_seconds: a worker may answer with the old
    # user record until its entry expires.
    wait_until(
        lambda: can_log_in(url, login),
        service=f"the new admin password at {url}",
        timeout=cache_seconds + 15,
        log=None,
        interval=1,
    )
