"""Credentials generated on the first `up` and kept in the state folder (0600), never elsewhere.

They are the kit's own source of truth: moto keeps nothing across a restart, so every `up` seeds
the emulator's Secrets Manager again from here, exactly as the cloud's secrets are laid out.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from mlplatform.config import Environment
from mlplatform.paths import StatePaths

__all__ = [
    "Credentials",
    "load_or_create",
    "new_password",
    "share_with_containers",
    "write_private",
    "write_service_files",
]

_ALNUM = string.ascii_letters + string.digits


def new_password(length: int = 32) -> str:
    """A random password of letters and digits (`length` characters)."""
    # Alphanumeric only: the values travel through URIs, ini files and shell `env` output.
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass(frozen=True)
class Credentials:
    """Every generated secret of the local stack."""

    db_username: str
    db_password: str
    db_root_password: str
    admin_username: str
    admin_password: str
    flask_secret_key: str
    s3_access_key: str
    s3_secret_key: str
    client_username: str
    client_password: str

    def __repr__(self) -> str:
        return f"Credentials(db_user={self.db_username}, admin={self.admin_username})"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically (a crash never leaves half a secret)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create(
    paths: StatePaths, env: Environment, db_username: str = "mlflow"
) -> tuple[Credentials, bool]:
    """Return the stack's credentials, generating them on first use; the bool says if new."""
    file = paths.secrets / "credentials.json"
    fresh = {
        "db_username": db_username,
        "db_password": new_password(),
        "db_root_password": new_password(),
        "admin_username": env.mlflow.admin_username,
        "admin_password": new_password(),
        "flask_secret_key": secrets.token_hex(32),
        "s3_access_key": "AK"
        + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18)),
        "s3_secret_key": new_password(40),
        "client_username": env.mlflow.client_username,
        "client_password": new_password(),
    }
    stored = json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}
    # A state folder from an older kit lacks newer credentials: add them, keep the rest.
    creds = Credentials(**{**fresh, **stored})
    if set(fresh) - set(stored):
        write_private(file, json.dumps(asdict(creds), indent=2))
    return creds, not stored


def write_service_files(paths: StatePaths, creds: Credentials) -> None:
    """Write the files services read their credentials from (both runtimes mount the same files)."""
    s3_config = {
        "identities": [
            {
                "name": "mlplatform",
                "credentials": [
                    {"accessKey": creds.s3_access_key, "secretKey": creds.s3_secret_key}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    files = {
        "s3.json": json.dumps(s3_config, indent=2),
        # boto3 reads this via AWS_SHARED_CREDENTIALS_FILE: keys stay out of process environments.
        "aws-credentials": (
            "[default]\n"
            f"aws_access_key_id = {creds.s3_access_key}\n"
            f"aws_secret_access_key = {creds.s3_secret_key}\n"
        ),
        "db-password": creds.db_password,
        "db-root-password": creds.db_root_password,
    }
    for name, text in files.items():
        target = paths.secrets / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            write_private(target, text)
    share_with_containers(paths, "aws-credentials", files["aws-credentials"])


def share_with_containers(paths: StatePaths, name: str, text: str) -> None:
    """Write `text` where the compose runtime's containers mount it from (secrets/container/).

    Containers run as their own non-root users and cannot read the 0600 files; the copies they
    mount are world-readable files inside a folder only this user can enter.
    """
    shared = paths.secrets / "container"
    shared.mkdir(mode=0o700, exist_ok=True)
    os.chmod(shared, 0o700)
    copy = shared / name
    if not copy.exists() or copy.read_text(encoding="utf-8") != text:
        write_private(copy, text)
        os.chmod(copy, 0o444)
