"""The one definition of the local stack's four services, read by both runtimes.

The native runtime turns it into supervised processes on 127.0.0.1; the compose runtime's file
(compose/docker-compose.yml) is rendered from it. The MLflow server's environment is built here
once, parameterised only by where the other services are reachable, so the two runtimes and the
cloud's ECS task definition configure the server the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlplatform.config import Environment
from mlplatform.names import CONTAINER_AUTH_CONFIG_DIR

__all__ = [
    "ARTIFACT_PREFIX",
    "DATABASE_SERVER_FLAGS",
    "SERVICES",
    "Endpoints",
    "Service",
    "compose_endpoints",
    "database_tls_flags",
    "mlflow_environment",
    "native_endpoints",
    "s3_server_flags",
]

ARTIFACT_PREFIX = "mlflow-artifacts"

# MySQL 8.0's SQL mode and a utf8mb4 default, given to the database in both runtimes so the local
# server (MariaDB natively, MySQL in compose) accepts and rejects the same SQL as RDS.
DATABASE_SERVER_FLAGS = (
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--sql-mode=ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
    # RDS for MySQL's durability: a commit is on disk (redo log and binary log) before it is
    # acknowledged, and pages are written through the doublewrite buffer. MariaDB's own default
    # for sync_binlog is 0, so these are stated, not left to either engine.
    "--innodb-flush-log-at-trx-commit=1",
    "--innodb-doublewrite=ON",
    # RDS keeps a binary log whenever automated backups are on, and every cloud environment
    # has them (backup_retention_days > 0); without a binary log sync_binlog means nothing.
    "--log-bin=binlog",
    "--sync-binlog=1",
    # The format RDS recommends; stated because MySQL 8.0 (ROW) and MariaDB (MIXED) differ.
    "--binlog-format=MIXED",
    # The cloud's parameter group sets this (infra/stacks/data.py): with a binary log, MLflow's
    # migrations may create triggers only with it.
    "--log-bin-trust-function-creators=1",
    # Nothing replays the local binary log; a day of it bounds the disk it takes.
    "--binlog-expire-logs-seconds=86400",
)


def database_tls_flags(ca: str, cert: str, key: str) -> list[str]:
    """Server flags for TLS as the cloud has it: RDS's parameter group requires secure transport.

    Unix-socket connections (the kit's administration) count as secure; every TCP client must
    use TLS 1.2 or later and is refused otherwise.
    """
    return [
        f"--ssl-ca={ca}",
        f"--ssl-cert={cert}",
        f"--ssl-key={key}",
        "--require-secure-transport=ON",
        "--tls-version=TLSv1.2,TLSv1.3",
    ]


def s3_server_flags(data_dir: str, ip: str, bind: str, port: int, config: str) -> list[str]:
    """`weed mini` arguments for the S3 store, shared by both runtimes.

    weed mini also runs a master, volume server, filer and admin server; their ports follow the S3
    port (port+1 .. port+4, gRPC at +10000) so two stacks on one machine never collide.
    """
    return [
        "mini",
        f"-dir={data_dir}",
        f"-ip={ip}",
        f"-ip.bind={bind}",
        f"-s3.port={port}",
        f"-master.port={port + 1}",
        f"-volume.port={port + 2}",
        f"-filer.port={port + 3}",
        f"-admin.port={port + 4}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
    ]


@dataclass(frozen=True)
class Service:
    """One service of the stack: its name, the port it listens on inside a container, its check."""

    name: Literal["database", "s3", "aws", "mlflow"]
    description: str
    container_port: int
    health: Literal["mysql", "http"]
    health_path: str
    image_variable: str
    default_image: str

    def host_port(self, env: Environment) -> int:
        """The loopback port the service is published on, from environments.toml."""
        return int(
            getattr(
                env.ports,
                {"database": "database", "s3": "s3", "aws": "aws"}.get(self.name, "mlflow"),
            )
        )


SERVICES: tuple[Service, ...] = (
    Service(
        "database",
        "MySQL-protocol backend store",
        3306,
        "mysql",
        "",
        "MLP_DATABASE_IMAGE",
        "mysql:8.0",
    ),
    Service(
        "s3",
        "SeaweedFS S3 artifact store",
        8333,
        "http",
        "/healthz",
        "MLP_S3_IMAGE",
        "chrislusf/seaweedfs:4.48",
    ),
    Service(
        "aws",
        "moto AWS emulator (Secrets Manager)",
        4566,
        "http",
        "/moto-api/",
        "MLP_AWS_IMAGE",
        "motoserver/moto:5.2.5",
    ),
    Service(
        "mlflow",
        "MLflow tracking server and registry",
        5000,
        "http",
        "/health",
        "MLP_MLFLOW_IMAGE",
        "mlplatform/mlflow-server:local",
    ),
)


@dataclass(frozen=True)
class Endpoints:
    """Where the MLflow server reaches its dependencies (differs only by runtime)."""

    db_host: str
    db_port: int
    s3_url: str
    aws_url: str
    bind_host: str
    credentials_file: str
    db_ca_file: str
    auth_config_dir: str | None = None


def native_endpoints(env: Environment, credentials_file: str, db_ca_file: str) -> Endpoints:
    """Everything on loopback, on the configured host ports."""
    return Endpoints(
        db_host="127.0.0.1",
        db_port=env.ports.database,
        s3_url=f"http://127.0.0.1:{env.ports.s3}",
        aws_url=f"http://127.0.0.1:{env.ports.aws}",
        bind_host="127.0.0.1",
        credentials_file=credentials_file,
        db_ca_file=db_ca_file,
    )


def compose_endpoints() -> Endpoints:
    """Service names on the compose network, on the containers' own ports."""
    ports = {s.name: s.container_port for s in SERVICES}
    return Endpoints(
        db_host="database",
        db_port=ports["database"],
        s3_url=f"http://s3:{ports['s3']}",
        aws_url=f"http://aws:{ports['aws']}",
        bind_host="0.0.0.0",
        credentials_file="/run/secrets/aws_credentials",
        db_ca_file="/run/secrets/db_ca",
        auth_config_dir=CONTAINER_AUTH_CONFIG_DIR,
    )


def mlflow_environment(env: Environment, where: Endpoints) -> dict[str, str]:
    """The MLflow server's environment: names of secrets and endpoints, never a secret value."""
    return {
        "MLFLOW_DB_ENGINE": env.database.engine,
        "MLFLOW_DB_HOST": where.db_host,
        "MLFLOW_DB_PORT": str(where.db_port),
        "MLFLOW_DB_NAME": env.database.name,
        "MLFLOW_DB_SECRET_ID": env.database_secret_name,
        # The CA the database's certificate is verified against (chain and host name), as the
        # cloud's task verifies RDS's against the bundle in the image.
        "MLFLOW_DB_SSL_CA": where.db_ca_file,
        "MLFLOW_ADMIN_SECRET_ID": env.admin_secret_name,
        "MLFLOW_FLASK_SECRET_ID": env.flask_secret_name,
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{env.bucket_name}/{ARTIFACT_PREFIX}",
        "MLFLOW_ALLOWED_HOSTS": ",".join(env.mlflow.allowed_hosts),
        "MLFLOW_WORKERS": str(env.mlflow.workers),
        "MLFLOW_AUTH_CACHE_TTL_SECONDS": str(env.mlflow.auth_cache_ttl_seconds),
        "MLFLOW_HOST": where.bind_host,
        # `serve` writes its auth ini here; `health` reads the server's login from it. The native
        # runtime puts it in its state folder instead (runtime/native.py).
        **({"MLFLOW_AUTH_CONFIG_DIR": where.auth_config_dir} if where.auth_config_dir else {}),
        "MLFLOW_PORT": "5000" if where.bind_host == "0.0.0.0" else str(env.ports.mlflow),
        # Locally S3 is SeaweedFS and Secrets Manager is moto; in AWS both variables are absent.
        "MLFLOW_S3_ENDPOINT_URL": where.s3_url,
        "AWS_ENDPOINT_URL_S3": where.s3_url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": where.aws_url,
        "AWS_SHARED_CREDENTIALS_FILE": where.credentials_file,
        # No profile from ~/.aws/config (SSO, assume-role) and no instance metadata: the keys
        # above are the only credentials a local service can find.
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": env.region,
    }
