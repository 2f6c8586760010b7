"""`invoke parity --env E`: the local stack against a cloud environment, item by item.

    report = parity(local, prod)          # Targets from resolve_targets("local", "prod")
    report.clean                          # False when any row drifted or could not be read

Each row puts what the local stack runs beside what the environment runs, both read where they
live, never from a record on this machine:

  MLflow version      each server's /version (logged in as its admin)
  database            the local server's SELECT VERSION() (or the SQLite fallback) against the
                      RDS instance's engine and version; same engine and major.minor is parity
  setting NAME        the MLflow server's environment that must match everywhere (database
                      engine and name, auth cache), local configuration against the service's
                      task definition in ECS; `workers` against the environment's own
                      configuration (it is sized per environment)
  image NAME          the digest `invoke build` saved here against what the environment runs:
                      the MLflow service's task definition, the training image the stack
                      records, the serving image of every endpoint variant; each also in ECR
  champion            the local champion against the environment's (the version it came from)
  training lock       this checkout's lock of each model's source against the one its champion
                      was trained with (its mlp.lock.sha256 lineage tag)
  python              this Python's major.minor against the one the environment's champion was
                      trained with (its MLmodel)

A row whose side cannot be read is `unknown`, with the reason, and counts as drift: parity that
could not be checked is not parity.
"""

from __future__ import annotations

import json
import platform
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import botocore.exceptions
import mlflow.artifacts
import pymysql
import requests
import yaml
from mlflow.exceptions import MlflowException

from mlplatform.cloud.stack_outputs import released_image
from mlplatform.config import Environment
from mlplatform.errors import PlatformError
from mlplatform.images.build import built_archive, image_name, sidecar
from mlplatform.images.oci_archive import open_image
from mlplatform.local.database_admin import find_server
from mlplatform.local.database_tls import tls_files
from mlplatform.local.health import database_connection
from mlplatform.local.services import mlflow_environment, native_endpoints
from mlplatform.names import SOURCE_IMAGES, Output, endpoint_name, repository_output
from mlplatform.registry.client import Registry
from mlplatform.release.ecr_push import image_present
from mlplatform.reporting import JsonFields
from mlplatform.sources import configured_sources, model_source
from mlplatform.target import Target

__all__ = ["SAME_EVERYWHERE", "Parity", "Row", "parity"]

SAME, DRIFT, UNKNOWN = "same", "drift", "unknown"
# The MLflow server settings every environment runs alike (the rest are sized or addressed per
# environment).
SAME_EVERYWHERE = ("MLFLOW_DB_ENGINE", "MLFLOW_DB_NAME", "MLFLOW_AUTH_CACHE_TTL_SECONDS")
LOCK_TAG = "mlp.lock.sha256"
_READ_ERRORS = (
    PlatformError,
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    MlflowException,
    requests.RequestException,
    pymysql.err.MySQLError,
    OSError,
    KeyError,
    ValueError,
)


class _Unreadable(Exception):
    """One side of a row could not be read; the message says why."""


def _tls_text(required: bool, verified: bool) -> str:
    server = "required by the server" if required else "optional at the server"
    client = "MLflow verifies the certificate" if verified else "MLflow does not verify"
    return f"{server}; {client}"


@dataclass(frozen=True)
class Row(JsonFields):
    """One item: what runs locally, what runs in the environment, and whether they agree."""

    item: str
    local: str
    remote: str
    status: str


@dataclass(frozen=True)
class Parity:
    """All rows for one environment."""

    env: str
    rows: tuple[Row, ...]

    @property
    def clean(self) -> bool:
        """True when every row is the same on both sides."""
        return all(r.status == SAME for r in self.rows)

    def as_json(self) -> dict[str, Any]:
        """The `--json` object: env, clean, rows."""
        return {"env": self.env, "clean": self.clean, "rows": [r.as_json() for r in self.rows]}


def _read(value: Callable[[], str]) -> tuple[str, bool]:
    try:
        return value(), True
    except _Unreadable as exc:
        return f"unknown: {exc}", False
    except _READ_ERRORS as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"unknown: {first}", False


def _row(
    item: str,
    local: Callable[[], str],
    remote: Callable[[], str],
    same: Callable[[str, str], bool] = str.__eq__,
) -> Row:
    left, left_ok = _read(local)
    right, right_ok = _read(remote)
    if not (left_ok and right_ok):
        return Row(item, left, right, UNKNOWN)
    return Row(item, left, right, SAME if same(left, right) else DRIFT)


def parity(local: Target, remote: Target) -> Parity:
    """Compare the local stack with `remote`'s deployed environment; never raises for a row."""
    remote.cloud_only("parity compares the local stack with a cloud environment")
    probe = _Probe(local, remote)
    rows = [
        _row(
            "MLflow version",
            lambda: probe.server_version(local),
            lambda: probe.server_version(remote),
        ),
        _row("database", probe.local_database, probe.remote_database, _same_database),
        _row("database TLS", probe.local_tls, probe.remote_tls),
        *probe.settings(),
        *probe.images(),
        *probe.champion(),
    ]
    return Parity(remote.name, tuple(rows))


def _same_database(left: str, right: str) -> bool:
    """Same engine, same major.minor: RDS patches minor versions, a laptop's packages too."""

    def key(text: str) -> tuple[str, str]:
        engine, _, version = text.partition(" ")
        return engine, ".".join(version.split(".")[:2])

    return key(left) == key(right)


def _same_minor(left: str, right: str) -> bool:
    return left.split(".")[:2] == right.split(".")[:2]


class _Probe:
    """Reads each side once and shares what it read between rows."""

    def __init__(self, local: Target, remote: Target) -> None:
        self.local = local
        self.remote = remote
        self._outputs: dict[str, dict[str, str]] = {}
        self._instance: dict[str, Any] | None = None
        self._champions: dict[tuple[str, str], Any] = {}
        self._registries: dict[str, Registry] = {}

    def registry(self, target: Target) -> Registry:
        """The target's registry and admin login, looked up once (stack outputs, a secret)."""
        if target.name not in self._registries:
            self._registries[target.name] = target.registry()
        return self._registries[target.name]

    def server_version(self, target: Target) -> str:
        """What the target's MLflow server says its version is."""
        registry = self.registry(target)
        answer = requests.get(
            f"{registry.tracking_uri}/version",
            auth=(registry.username, registry.password),
            timeout=15,
        )
        answer.raise_for_status()
        return answer.text.strip()

    # -- database ----------------------------------------------------------------------------

    def _local_value(self, query: str) -> Any | None:
        """The one value `query` selects on the local server; None on the SQLite fallback."""
        env = self.local.env
        creds, _ = self.local.local_stack(("mlflow",))
        try:
            conn = database_connection(env, creds, self.local.paths, timeout=5)
        except (pymysql.err.MySQLError, OSError) as exc:
            if find_server(env.database.engine) is None:
                return None
            raise _Unreadable(f"the local database does not answer ({exc.args[-1]})") from exc
        with conn, conn.cursor() as cursor:
            cursor.execute(query)
            (value,) = cursor.fetchone()
        return value

    def local_database(self) -> str:
        version = self._local_value("SELECT VERSION()")
        if version is None:
            return "sqlite (the fallback: no MySQL-protocol server here)"
        engine = "mariadb" if "mariadb" in str(version).lower() else "mysql"
        return f"{engine} {str(version).split('-')[0]}"

    def local_tls(self) -> str:
        """What the local server requires and what MLflow verifies against."""
        required = self._local_value("SELECT @@require_secure_transport")
        if required is None:
            return "none (sqlite)"
        # Both local runtimes give MLflow this CA in MLFLOW_DB_SSL_CA (local/services.py).
        return _tls_text(bool(int(required)), tls_files(self.local.paths).ca.is_file())

    def _remote_instance(self) -> dict[str, Any]:
        if self._instance is None:
            identifier = f"{self.remote.env.name_prefix}-mlflow"
            rds = self.remote.client("rds")
            (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
            self._instance = dict(instance)
        return self._instance

    def remote_tls(self) -> str:
        """The parameter group's require_secure_transport and the task's MLFLOW_DB_SSL_CA."""
        group = self._remote_instance()["DBParameterGroups"][0]["DBParameterGroupName"]
        pages = (
            self.remote.client("rds")
            .get_paginator("describe_db_parameters")
            .paginate(DBParameterGroupName=group)
        )
        values = {
            p["ParameterName"]: str(p.get("ParameterValue", ""))
            for page in pages
            for p in page["Parameters"]
        }
        required = values.get("require_secure_transport", "0").lower() in ("1", "on")
        environment = self._service_definition().get("environment", [])
        verified = any(e["name"] == "MLFLOW_DB_SSL_CA" and e["value"] for e in environment)
        return _tls_text(required, verified)

    def remote_database(self) -> str:
        instance = self._remote_instance()
        return f"{instance['Engine']} {instance['EngineVersion']}"

    # -- server settings ---------------------------------------------------------------------

    def _outputs_of(self, part: str, *keys: str) -> dict[str, str]:
        if part not in self._outputs:
            self._outputs[part] = self.remote.outputs(part, ())
        found = self._outputs[part]
        missing = [k for k in keys if k not in found]
        if missing:
            raise _Unreadable(f"stack output {missing[0]} is missing")
        return found

    def _service_definition(self) -> dict[str, Any]:
        outputs = self._outputs_of("mlflow", Output.CLUSTER_NAME, Output.SERVICE_NAME)
        ecs = self.remote.client("ecs")
        services = ecs.describe_services(
            cluster=outputs[Output.CLUSTER_NAME], services=[outputs[Output.SERVICE_NAME]]
        )["services"]
        if not services:
            raise _Unreadable(f"no ECS service {outputs[Output.SERVICE_NAME]}")
        definition = ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])
        container: dict[str, Any] = definition["taskDefinition"]["containerDefinitions"][0]
        return container

    def _remote_setting(self, name: str) -> str:
        values = {e["name"]: e["value"] for e in self._service_definition().get("environment", [])}
        if name not in values:
            raise _Unreadable(f"the service's task definition sets no {name}")
        return str(values[name])

    def settings(self) -> list[Row]:
        local_env = self.local.env
        local = mlflow_environment(local_env, native_endpoints(local_env, "", ""))
        rows = [
            _row(
                f"setting {name}",
                partial(local.__getitem__, name),
                partial(self._remote_setting, name),
            )
            for name in SAME_EVERYWHERE
        ]
        configured = str(self.remote.env.mlflow.workers)
        rows.append(
            _row(
                "setting MLFLOW_WORKERS (as configured)",
                lambda: configured,
                lambda: self._remote_setting("MLFLOW_WORKERS"),
            )
        )
        return rows

    # -- images ------------------------------------------------------------------------------

    def _built(self, name: str) -> str:
        archive = built_archive(self.local.paths, name)
        if not archive.is_file():
            raise _Unreadable(f"not built here; run `invoke build --env {self.remote.env.name}`")
        return built_digest(archive)

    def _in_ecr(self, name: str, digest: str) -> str:
        outputs = self._outputs_of("mlflow", repository_output(name))
        repository = outputs[repository_output(name)].split("/", 1)[1]
        if not image_present(self.remote.client("ecr"), repository, digest):
            raise _Unreadable(f"{digest[:19]}… is not in {repository}")
        return digest

    def _running(self, name: str, source: str | None) -> str:
        if source is None:
            image = str(self._service_definition()["image"])
            return self._in_ecr(name, image.rpartition("@")[2])
        if name == "training":
            outputs = self._outputs_of("mlflow", repository_output(name))
            training = released_image(outputs, "training", source)
            if training is None:
                raise _Unreadable(f"no release recorded a training image of {source}")
            return self._in_ecr(name, training.rpartition("@")[2])
        env = self.remote.env
        models = [m for m in env.models if model_source(env, m).name == source]
        digests = sorted({d for m in models for d in self._endpoint_images(m)})
        if not digests:
            raise _Unreadable(f"no endpoint serves a model of {source}")
        for digest in digests:
            self._in_ecr(name, digest)
        return ", ".join(digests)

    def _endpoint_images(self, model: str) -> Iterable[str]:
        sm = self.remote.client("sagemaker")
        name = endpoint_name(self.remote.env, model)
        try:
            endpoint = sm.describe_endpoint(EndpointName=name)
        except botocore.exceptions.ClientError as exc:
            raise _Unreadable(f"no endpoint {name}") from exc
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config["ProductionVariants"]:
            described = sm.describe_model(ModelName=variant["ModelName"])
            yield str(described["PrimaryContainer"]["Image"]).rpartition("@")[2]

    def images(self) -> list[Row]:
        """MLflow's image, then each remote source's training and serving image."""
        pairs: list[tuple[str, str | None]] = [("mlflow", None)]
        sources = configured_sources(self.remote.env)
        pairs += [(name, source) for name in SOURCE_IMAGES for source in sources]
        return [
            _row(
                f"image {label}",
                partial(self._built, label),
                partial(self._running, name, source),
            )
            for name, source in pairs
            for label in [name if source is None else image_name(name, source)]
        ]

    # -- the champion and what it was trained with -------------------------------------------

    def _champion(self, target: Target, model: str) -> Any:
        key = (target.name, model)
        if key not in self._champions:
            registry = self.registry(target)
            with registry.client() as client:
                version = client.get_model_version_by_alias(model, "champion")
                run = client.get_run(version.run_id) if version.run_id else None
                flavors = _flavors(client, model, version.version)
            self._champions[key] = (version, run, flavors)
        return self._champions[key]

    def _tag(self, target: Target, model: str, tag: str) -> str:
        version, run, _ = self._champion(target, model)
        value = version.tags.get(tag) or (run.data.tags.get(tag) if run else None)
        if not value:
            raise _Unreadable(f"its champion has no {tag} tag")
        return str(value)

    def _local_champion(self, model: str) -> str:
        version, _, _ = self._champion(self.local, model)
        return f"{self.local.name} v{version.version}"

    def _remote_champion(self, model: str) -> str:
        version, _, _ = self._champion(self.remote, model)
        source = version.tags.get("mlp.source.env")
        if not source:
            return f"{self.remote.name} v{version.version} (trained there)"
        return f"{source} v{version.tags.get('mlp.source.version', '?')}"

    def _remote_python(self, model: str) -> str:
        _, _, flavors = self._champion(self.remote, model)
        version = flavors.get("python_function", {}).get("python_version")
        if not version:
            raise _Unreadable("its champion's MLmodel names no python_version")
        return str(version)

    def champion(self) -> list[Row]:
        rows = []
        models = list(self.remote.env.models)
        for model in models:
            # One model keeps the rows' plain names; several name theirs.
            named = "" if len(models) == 1 else f" {model}"
            rows += [
                _row(
                    f"champion{named}",
                    partial(self._local_champion, model),
                    partial(self._remote_champion, model),
                ),
                _row(
                    f"training lock{named}",
                    partial(_training_lock, self.remote.env, model),
                    partial(self._tag, self.remote, model, LOCK_TAG),
                ),
                _row(
                    f"python{named}",
                    platform.python_version,
                    partial(self._remote_python, model),
                    _same_minor,
                ),
            ]
        return rows


def _training_lock(env: Environment, model: str) -> str:
    """sha256 of this checkout's lock of the model's source: what training tags its runs with."""
    return model_source(env, model).lock_sha256()


def _flavors(client: Any, name: str, version: str) -> dict[str, Any]:
    """The flavors of a version's MLmodel, downloaded alone (not the model)."""
    location = client.get_model_version_download_uri(name, version).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="mlp-parity-") as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/MLmodel", dst_path=tmp)
        mlmodel = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return dict(mlmodel.get("flavors") or {})


def built_digest(archive: Path) -> str:
    """The digest of an archive `invoke build` saved: from its sidecar, else from the archive."""
    side = sidecar(archive)
    if side.is_file() and side.stat().st_mtime >= archive.stat().st_mtime:
        try:
            return str(json.loads(side.read_text(encoding="utf-8"))["digest"])
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: the archive itself says
    with open_image(archive) as image:
        return image.digest
