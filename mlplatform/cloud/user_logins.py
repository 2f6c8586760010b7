"""MLflow logins of people, one Secrets Manager secret each: `<prefix>/mlflow-users/<name>`.

The secret is the only copy of a password: the kit generates it, stores it here before MLflow
hears of it, and prints it only on request (`invoke env --user NAME`). A tag records who made the
user, so `team sync` removes the members it added and leaves `invoke user add`'s alone.
The calls are the operator's own (secretsmanager:CreateSecret, PutSecretValue, GetSecretValue,
DeleteSecret and ListSecrets on the prefix); no role of the stacks reads these secrets.
Locally the secrets live in the local stack's emulator, which keeps nothing across a restart:
`team sync` then gives the members new passwords (MLflow's user table survives in the database).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from mlplatform.config import Environment
from mlplatform.errors import PlatformError
from mlplatform.names import user_secret_name

__all__ = ["AD_HOC", "FROM_TEAMS", "Logins"]

# The tag values of `mlp:managed-by`.
FROM_TEAMS, AD_HOC = "team-sync", "user-add"
_TAG = "mlp:managed-by"


class Logins:
    """The user logins of one environment, in its Secrets Manager (`sm`, a boto3 client)."""

    def __init__(self, env: Environment, sm: Any) -> None:
        self.env, self.sm = env, sm
        self.prefix = user_secret_name(env, "")

    def secret_name(self, user: str) -> str:
        """The secret that holds `user`'s login."""
        return user_secret_name(self.env, user)

    def password(self, user: str) -> str | None:
        """`user`'s stored password, or None when there is no secret."""
        try:
            value = self.sm.get_secret_value(SecretId=self.secret_name(user))["SecretString"]
        except self.sm.exceptions.ResourceNotFoundException:
            return None
        except botocore.exceptions.ClientError as exc:
            raise self._error("read", user, exc) from exc
        try:
            return str(json.loads(value)["password"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PlatformError(
                f"{self.secret_name(user)} is not a JSON object with username and password"
            ) from exc

    def required(self, user: str) -> str:
        """`user`'s stored password; PlatformError in one line when there is no login."""
        password = self.password(user)
        if password is None:
            raise PlatformError(
                f"no login of {user!r} in {self.env.name}'s Secrets Manager "
                f"({self.secret_name(user)}); `invoke team-sync` or `invoke user-add` makes one"
            )
        return password

    def store(self, user: str, password: str, managed_by: str) -> None:
        """Create or overwrite `user`'s secret with `password`, tagged with who manages it."""
        name, value = self.secret_name(user), json.dumps({"username": user, "password": password})
        try:
            try:
                self.sm.create_secret(
                    Name=name,
                    SecretString=value,
                    Description=f"MLflow login of {user} ({self.env.name})",
                    Tags=[{"Key": _TAG, "Value": managed_by}],
                )
            except self.sm.exceptions.ResourceExistsException:
                self.sm.put_secret_value(SecretId=name, SecretString=value)
                self.sm.tag_resource(SecretId=name, Tags=[{"Key": _TAG, "Value": managed_by}])
        except botocore.exceptions.ClientError as exc:
            raise self._error("store", user, exc) from exc

    def delete(self, user: str) -> None:
        """Delete `user`'s secret at once (the MLflow user it logs in as is gone)."""
        try:
            self.sm.delete_secret(SecretId=self.secret_name(user), ForceDeleteWithoutRecovery=True)
        except self.sm.exceptions.ResourceNotFoundException:
            pass
        except botocore.exceptions.ClientError as exc:
            raise self._error("delete", user, exc) from exc

    def managed(self) -> dict[str, str]:
        """Every user with a login here -> who manages it (`FROM_TEAMS` or `AD_HOC`)."""
        found: dict[str, str] = {}
        try:
            pages = self.sm.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "name", "Values": [self.prefix]}]
            )
            for page in pages:
                for secret in page["SecretList"]:
                    if not secret["Name"].startswith(self.prefix):
                        continue
                    tags = {t["Key"]: t["Value"] for t in secret.get("Tags", [])}
                    found[secret["Name"][len(self.prefix) :]] = tags.get(_TAG, AD_HOC)
        except botocore.exceptions.ClientError as exc:
            raise PlatformError(f"cannot list {self.env.name}'s user logins: {exc}") from exc
        return found

    def _error(self, verb: str, user: str, exc: Exception) -> PlatformError:
        return PlatformError(f"cannot {verb} {self.env.name}'s login of {user!r}: {exc}")
