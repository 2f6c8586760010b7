"""Typed loader for environments.toml, the one configuration file of the kit.

    >>> env = load_environment("local")
    >>> env.ports.mlflow
    5000

Every table is a strict pydantic model: an unknown key, a wrong type or an impossible value
raises ConfigError naming the file, the dotted key and the reason. The file path comes from the
argument, else MLPLATFORM_CONFIG, else environments.toml at the repository root.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlplatform.errors import ConfigError

__all__ = [
    "DIGEST_PATTERN",
    "ArtifactsSettings",
    "ComputeSettings",
    "DatabaseSettings",
    "Environment",
    "MlflowSettings",
    "ModelSettings",
    "MonitoringSettings",
    "NetworkSettings",
    "Ports",
    "SageMakerSettings",
    "TrainingSettings",
    "config_path",
    "load_environment",
    "load_environments",
    "read_toml",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = ("local", "staging", "prod")
# An image digest as ECR and the task definitions name it.
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"

Port = Annotated[int, Field(ge=1024, le=65535)]
PositiveInt = Annotated[int, Field(gt=0)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# A lowercase DNS name of two labels or more (Route 53 zone names and TLS names compare
# lowercase; a single label could not be a zone of its own).
DomainName = Annotated[
    str,
    Field(
        max_length=253,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    ),
]

# Versions the kit knows a pinned RDS minor for and a local server for; others are refused at
# load so a typo cannot reach a CloudFormation deploy.
SUPPORTED_VERSIONS: dict[str, tuple[str, ...]] = {"mysql": ("8.0", "8.4"), "mariadb": ("10.11",)}


Digest = Annotated[str, Field(pattern=DIGEST_PATTERN)]


def _refuse_release_state(data: Any, key: str, hint: str = "") -> Any:
    """A model's raw input, unless it sets `key`, which only `invoke deploy` sets (CDK context)."""
    if isinstance(data, dict) and data.get(key):  # None or {}: not set
        raise ValueError(
            f"{key} is set by `invoke deploy` (CDK context), not in this file"
            + (f"; {hint}" if hint else "")
        )
    return data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Ports(_Strict):
    """Host ports (loopback only): the local stack's, or a cloud environment's emulation's."""

    mlflow: Port = 5000
    # The S3 store also uses s3+1..s3+4 and those plus 10000 (see mlplatform.local.services).
    s3: Annotated[int, Field(ge=1024, le=55000)] = 8333
    aws: Port = 4566
    database: Port = 3307

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        values = list(self.model_dump().values())
        if len(set(values)) != len(values):
            raise ValueError(f"ports must be distinct, got {self.model_dump()}")
        s3_range = {self.s3 + i + grpc for i in range(5) for grpc in (0, 10000)}
        clash = [p for p in (self.mlflow, self.aws, self.database) if p in s3_range]
        if clash:
            raise ValueError(f"port {clash[0]} is used by the S3 store (s3 port + 0..4, +10000)")
        return self


class DatabaseSettings(_Strict):
    """The MLflow backend database: engine/version locally and on RDS, and RDS sizing."""

    engine: Literal["mysql", "mariadb"] = "mysql"
    version: str = "8.0"
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")] = "mlflow"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.micro"
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 20
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 100
    multi_az: bool = False
    deletion_protection: bool = False
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    # Cloud only: how often Secrets Manager rotates the RDS credentials.
    rotation_days: Annotated[int, Field(ge=1, le=365)] = 30

    @model_validator(mode="after")
    def _known_version(self) -> DatabaseSettings:
        allowed = SUPPORTED_VERSIONS[self.engine]
        if self.version not in allowed:
            raise ValueError(
                f"{self.engine} version {self.version!r} is not supported; "
                f"use one of {list(allowed)}"
            )
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("max_allocated_storage_gib must be >= allocated_storage_gib")
        return self


class MlflowSettings(_Strict):
    """The MLflow tracking server: process settings (all targets) and Fargate sizing (cloud)."""

    workers: Annotated[int, Field(ge=1, le=32)] = 2
    allowed_hosts: Annotated[list[str], Field(min_length=1)] = ["localhost", "127.0.0.1"]
    # Password hashing costs 200-450 ms per request on 2 cores without this cache.
    auth_cache_ttl_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    admin_username: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{2,63}$")] = "admin"
    # The MLflow user training jobs and endpoints log in as (its password: the client secret).
    client_username: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{2,63}$")] = "sagemaker"
    cpu: Literal[256, 512, 1024, 2048, 4096] = 1024
    memory_mib: Annotated[int, Field(ge=512, le=30720)] = 2048
    min_tasks: Annotated[int, Field(ge=1, le=100)] = 1
    max_tasks: Annotated[int, Field(ge=1, le=100)] = 2
    image_digest: Annotated[str, Field(pattern=DIGEST_PATTERN)] | None = None
    # Cloud only, set by `invoke deploy` through mlplatform.release.cdk_context (never from the
    # file): the image the service keeps running while the migrate task already has image_digest;
    # "none" creates the service with no task until the first migration ran. Unset: the service
    # runs image_digest.
    service_image_digest: Annotated[str, Field(pattern=r"^(sha256:[0-9a-f]{64}|none)$")] | None = (
        None
    )
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:")] | None = None
    # The name clients use and the certificate covers: the MLflow stack creates a private hosted
    # zone of exactly this name with an alias to the ALB. Required wherever certificate_arn is
    # (validated here; a certificate from CDK context is checked by mlplatform.release.cdk_context).
    domain_name: Annotated[DomainName | None, Field(validate_default=True)] = None
    allow_http: bool = False
    internal: bool = True
    log_retention_days: PositiveInt = 30
    # Cloud only: the Fargate service scales out above this average CPU (target tracking).
    scale_cpu_percent: Annotated[int, Field(ge=10, le=90)] = 60
    # Cloud only: run the service's tasks on Fargate Spot (about 70% cheaper, docs/cost.md). AWS
    # may reclaim a task with two minutes' notice; ECS then starts another, so MLflow is away for
    # as long as a task takes to start. For non-prod; the migrate task stays on-demand.
    fargate_spot: bool = False

    @model_validator(mode="before")
    @classmethod
    def _release_state_is_not_configuration(cls, data: Any) -> Any:
        # Which image the service runs is the deploy's state, passed as CDK context; a value in
        # the file would pin the service and break `invoke deploy`'s two-phase rollout.
        return _refuse_release_state(data, "service_image_digest")

    @field_validator("domain_name")
    @classmethod
    def _named_where_certified(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Without it clients reach the ALB by its own DNS name, which no certificate covers,
        # so HTTPS could never validate.
        if value is None and info.data.get("certificate_arn") is not None:
            raise ValueError(
                "required where certificate_arn is set: set domain_name to the name the "
                'certificate covers (e.g. "mlflow.prod.internal")'
            )
        return value

    @model_validator(mode="after")
    def _scaling(self) -> MlflowSettings:
        if self.max_tasks < self.min_tasks:
            raise ValueError("max_tasks must be >= min_tasks")
        return self

    @property
    def server_hosts(self) -> list[str]:
        """Host names the cloud server accepts besides the ALB's own: domain_name, allowed_hosts.

        domain_name is derived into the list rather than required in allowed_hosts, so it cannot
        be forgotten there, and the local server (which reads allowed_hosts) keeps its loopback
        names only.
        """
        named = [self.domain_name] if self.domain_name else []
        return named + [h for h in self.allowed_hosts if h != self.domain_name]


class NetworkSettings(_Strict):
    """The VPC: address range, zones, NAT gateways (0: isolated subnets) and interface endpoints."""

    cidr: Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")] = "10.40.0.0/16"
    max_azs: Annotated[int, Field(ge=2, le=3)] = 2
    nat_gateways: Annotated[int, Field(ge=0, le=3)] = 0
    # Interface endpoints keep the AWS API calls (ECR, Logs, Secrets Manager, STS, KMS, SageMaker)
    # inside the VPC. Cost in most regions: USD 0.01 per hour per endpoint and zone plus USD 0.01
    # per GB, so the 8 endpoints over 2 zones are about USD 117 a month; a NAT gateway is about
    # USD 0.045 per hour (USD 33 a month) plus USD 0.045 per GB. Unset: on exactly when
    # nat_gateways = 0, where nothing else reaches the APIs (so false is refused there).
    interface_endpoints: bool | None = None
    flow_log_retention_days: PositiveInt = 30

    @field_validator("interface_endpoints")
    @classmethod
    def _apis_reachable(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is False and info.data.get("nat_gateways") == 0:
            raise ValueError(
                "false with nat_gateways = 0: nothing in the private subnets could reach ECR, "
                "Logs or Secrets Manager; set interface_endpoints = true or nat_gateways >= 1"
            )
        return value

    @property
    def has_interface_endpoints(self) -> bool:
        """Whether the VPC gets the interface endpoints: the setting, else exactly without NAT."""
        if self.interface_endpoints is None:
            return self.nat_gateways == 0
        return self.interface_endpoints


class ArtifactsSettings(_Strict):
    """The artifact bucket (SeaweedFS locally, S3 in the cloud)."""

    bucket_suffix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,30}$")] = "artifacts"
    noncurrent_version_expiration_days: PositiveInt = 90


class MonitoringSettings(_Strict):
    """Alarm subscribers and thresholds. prod must name a subscriber (see Environment)."""

    # Each address gets an SNS e-mail subscription (confirmed by a link AWS mails to it).
    alarm_emails: Annotated[list[Email], Field(max_length=20)] = []
    cpu_alarm_percent: Annotated[int, Field(ge=1, le=100)] = 80
    memory_alarm_percent: Annotated[int, Field(ge=1, le=100)] = 85
    # 5xx responses (ALB + targets) per 5 minutes before the alarm fires.
    http_5xx_alarm_count: Annotated[int, Field(ge=1)] = 10
    database_connections_alarm: Annotated[int, Field(ge=1)] = 100
    database_free_storage_alarm_gib: Annotated[int, Field(ge=1)] = 2
    # The data stack's CloudTrail trail (infra/components/audit_trail.py). Off where the account
    # already delivers its management events to a trail (an organization's): a second copy of
    # them is billed, the first is free.
    cloudtrail: bool = True
    # Days the trail's log files are kept.
    trail_retention_days: Annotated[int, Field(ge=90, le=3650)] = 365

    @model_validator(mode="before")
    @classmethod
    def _renamed_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "alarm_email" in data:
            raise ValueError(
                f'alarm_email is now alarm_emails, a list: alarm_emails = ["{data["alarm_email"]}"]'
            )
        return data

    @field_validator("alarm_emails")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("alarm_emails lists an address twice")
        return value


class SageMakerSettings(_Strict):
    """Instance types and counts for training jobs and endpoints."""

    training_instance_type: Annotated[str, Field(pattern=r"^(ml\.[a-z0-9]+\.[a-z0-9]+|local)$")] = (
        "ml.m5.large"
    )
    endpoint_instance_type: Annotated[str, Field(pattern=r"^(ml\.[a-z0-9]+\.[a-z0-9]+|local)$")] = (
        "ml.m5.large"
    )
    endpoint_min_instances: Annotated[int, Field(ge=1, le=100)] = 1
    endpoint_max_instances: Annotated[int, Field(ge=1, le=100)] = 2
    # Set: the endpoint is a SageMaker Serverless Inference endpoint of this memory, billed per
    # request-second instead of per instance-hour (for quiet models, docs/cost.md). SageMaker
    # gives it one production variant (no challenger), no VPC placement and no data capture, and
    # cannot turn an existing instance-based endpoint into one.
    serverless_memory_mib: Literal[1024, 2048, 3072, 4096, 5120, 6144] | None = None
    serverless_max_concurrency: Annotated[int, Field(ge=1, le=200)] = 5
    # A pin: the serving image every endpoint of this environment runs, an ECR URI by digest
    # (any repository the endpoint role may pull). Unset: each model's source's serving image
    # the last release pushed to the kit's serving repository (serving_image_digests).
    serving_image: (
        Annotated[
            str,
            Field(
                pattern=r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9/_.-]+@sha256:[0-9a-f]{64}$"
            ),
        ]
        | None
    ) = None
    # Set by `invoke deploy` through mlplatform.release.cdk_context (never from the file): the
    # serving image of each source (by source name) the release pushed to the kit's serving
    # repository, recorded as the MLflow stack's ServingImageDigest output so the endpoint step
    # reads it from the environment.
    serving_image_digests: dict[str, Digest] = {}
    endpoint_strategy: Literal["all-at-once", "canary", "linear"] = "canary"
    challenger_percent: Annotated[float, Field(ge=0, le=100)] = 10.0
    invocations_per_instance: Annotated[float, Field(gt=0)] = 100.0
    latency_alarm_ms: Annotated[float, Field(gt=0)] = 500.0
    error_alarm_count: Annotated[float, Field(gt=0)] = 5.0

    @model_validator(mode="before")
    @classmethod
    def _release_state_is_not_configuration(cls, data: Any) -> Any:
        return _refuse_release_state(
            data, "serving_image_digests", "pin an image with serving_image"
        )

    @model_validator(mode="after")
    def _endpoint_scaling(self) -> SageMakerSettings:
        if self.endpoint_max_instances < self.endpoint_min_instances:
            raise ValueError("endpoint_max_instances must be >= endpoint_min_instances")
        if self.serverless_memory_mib is not None and self.challenger_percent > 0:
            raise ValueError(
                "a serverless endpoint has one variant: set challenger_percent = 0 "
                "with serverless_memory_mib"
            )
        return self


class TrainingSettings(_Strict):
    """Where training data and model archives live, and how a challenger becomes champion."""

    # Each model's channels live under <dataset_prefix>/<model>/<channel>/.
    dataset_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]*[a-z0-9]$")] = "datasets"
    output_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]*[a-z0-9]$")] = (
        "training-output"
    )
    # The gate's margin: a challenger must beat the champion's metric by at least this much.
    min_improvement: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    max_runtime_seconds: Annotated[int, Field(ge=60, le=432000)] = 3600
    # Managed spot training for this environment's SageMaker jobs (spare capacity, billed at the
    # spot price; SageMaker restarts an interrupted job from its last checkpoint). Unset: on
    # outside prod.
    managed_spot: bool | None = None
    # How long a spot job may wait for capacity and run, in all (SageMaker: at least the
    # runtime). Unset: twice the job's max runtime.
    max_wait_seconds: Annotated[int, Field(ge=60, le=2419200)] | None = None
    # Each job's /opt/ml/checkpoints is kept under <checkpoint_prefix>/<model>/<job>/.
    checkpoint_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]*[a-z0-9]$")] = (
        "checkpoints"
    )
    # `invoke reproduce`: how far a rebuilt version's metric or prediction may be from the
    # recorded one (relative to the larger of the two, absolute below 1) and still pass.
    reproduce_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 1e-9
    # A pin: the training image every SageMaker job of this environment runs, by digest in the
    # kit's training repository. Unset: the image of the model's source the last release pushed
    # (the MLflow stack's TrainingImageDigest output, training_image_digests).
    training_image_digest: Digest | None = None
    # Set by `invoke deploy` through CDK context (never from the file): each source's training
    # image the release pushed, by source name.
    training_image_digests: dict[str, Digest] = {}

    @model_validator(mode="before")
    @classmethod
    def _release_state_is_not_configuration(cls, data: Any) -> Any:
        return _refuse_release_state(
            data, "training_image_digests", "pin an image with training_image_digest"
        )

    @model_validator(mode="after")
    def _wait_is_for_spot(self) -> TrainingSettings:
        if self.max_wait_seconds is not None and self.managed_spot is False:
            raise ValueError("max_wait_seconds applies to managed spot training only")
        return self


class ComputeSettings(_Strict):
    """The machines one model's SageMaker training jobs run on (`[E.models.NAME.compute]`)."""

    # Unset: [E.sagemaker] training_instance_type.
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] | None = None
    # More than one: SageMaker starts that many instances of the training image (algo-1...).
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    # Unset: [E.training] max_runtime_seconds.
    max_runtime_seconds: Annotated[int, Field(ge=60, le=432000)] | None = None


ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class ModelSettings(_Strict):
    """One registered model of an environment: the training source it is trained from."""

    # A directory with a source.toml (mlplatform.sources), relative to the repository or absolute.
    source: Annotated[str, Field(min_length=1)]
    # Arguments for the source's data generator (`invoke data`), after its output folder.
    data_arguments: list[str] = []
    compute: ComputeSettings = ComputeSettings()


class Environment(_Strict):
    """One table of environments.toml, validated."""

    name: Literal["local", "staging", "prod"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    account: Annotated[str, Field(pattern=r"^\d{12}$")]
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    # Every model the environment trains, serves and releases, by registered model name.
    models: Annotated[dict[ModelName, ModelSettings], Field(min_length=1)]
    ports: Ports = Ports()
    database: DatabaseSettings = DatabaseSettings()
    mlflow: MlflowSettings = MlflowSettings()
    network: NetworkSettings = NetworkSettings()
    artifacts: ArtifactsSettings = ArtifactsSettings()
    # Validated even when the table is absent: prod must not pass by leaving it out.
    monitoring: Annotated[MonitoringSettings, Field(validate_default=True)] = MonitoringSettings()
    sagemaker: SageMakerSettings = SageMakerSettings()
    training: TrainingSettings = TrainingSettings()

    @model_validator(mode="before")
    @classmethod
    def _renamed_model_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model_name" in data:
            raise ValueError(
                "model_name is now a table per model: "
                f'[{data.get("name")}.models.{data["model_name"]}] with source = "examples/fraud"'
            )
        return data

    @field_validator("models")
    @classmethod
    def _endpoint_names_distinct(cls, value: dict[str, ModelSettings]) -> dict[str, ModelSettings]:
        # Endpoint and job names fold "_" and "." into "-": two models must not fold alike.
        folded = [re.sub(r"[_.]", "-", name).lower() for name in value]
        if len(set(folded)) != len(folded):
            raise ValueError("two model names differ only in case, '_', '.' or '-'")
        return value

    def model(self, name: str | None = None) -> str:
        """The model `name` (ConfigError if unconfigured), or the only one when name is None."""
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models))
            raise ConfigError(
                f"environment {self.name} has {len(self.models)} models "
                f"({', '.join(self.models)}): pass --model"
            )
        if name not in self.models:
            raise ConfigError(
                f"environment {self.name} has no model {name!r}; configured: "
                f"{', '.join(self.models)} ([{self.name}.models.NAME] in environments.toml)"
            )
        return name

    @field_validator("monitoring")
    @classmethod
    def _prod_alarms_reach_someone(
        cls, value: MonitoringSettings, info: ValidationInfo
    ) -> MonitoringSettings:
        # prod is recognised by its table name: the names are a closed set (local, staging,
        # prod), so no flag exists that could be switched off by mistake.
        if info.data.get("name") == "prod" and not value.alarm_emails:
            raise ValueError(
                "alarm_emails is empty: prod alarms would reach nobody; set "
                'alarm_emails = ["ml-oncall@example.com"] (the on-call addresses) in '
                "[prod.monitoring]"
            )
        return value

    @property
    def bucket_name(self) -> str:
        """The artifact bucket's name, unique per account and region as S3 requires."""
        return f"{self.name_prefix}-{self.artifacts.bucket_suffix}-{self.account}-{self.region}"

    @property
    def database_secret_name(self) -> str:
        """Secrets Manager name of MLflow's database login (JSON with username, password, ...).

        A user with rights on MLflow's schema only: locally the kit's MLflow user; in the cloud
        one the migrate task creates and Secrets Manager rotates by alternating users.
        """
        return f"{self.name_prefix}/mlflow-database"

    @property
    def database_master_secret_name(self) -> str:
        """Secrets Manager name of the RDS master login (cloud: migrations and rotation only)."""
        return f"{self.name_prefix}/database-master"

    @property
    def admin_secret_name(self) -> str:
        """Secrets Manager name of the MLflow admin credentials and the Flask session key."""
        return f"{self.name_prefix}/mlflow-admin"

    @property
    def client_secret_name(self) -> str:
        """Secrets Manager name of the MLflow client (training) user's credentials (JSON)."""
        return f"{self.name_prefix}/mlflow-client"

    @property
    def flask_secret_name(self) -> str:
        """Secrets Manager name of the Flask session-signing key (a plain string)."""
        return f"{self.name_prefix}/mlflow-flask-key"


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Where environments.toml is read from: the argument, MLPLATFORM_CONFIG, or the repo root."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("MLPLATFORM_CONFIG") or REPO_ROOT / "environments.toml")


def read_toml(file: Path, variable: str) -> dict[str, Any]:
    """A configuration file's tables; ConfigError names the file and `variable`, which moves it."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{file}: file not found (set {variable} or create it)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc


def load_environments(path: str | os.PathLike[str] | None = None) -> dict[str, Environment]:
    """Read and validate every environment table; raise ConfigError on the first problem."""
    file = config_path(path)
    raw = read_toml(file, "MLPLATFORM_CONFIG")
    unknown = sorted(set(raw) - set(ENV_NAMES))
    if unknown:
        raise ConfigError(f"{file}: {unknown[0]}: unknown environment; expected {list(ENV_NAMES)}")
    envs: dict[str, Environment] = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: {name}: must be a table, got {type(table).__name__}")
        try:
            envs[name] = Environment.model_validate({"name": name, **table})
        except ValidationError as exc:
            raise ConfigError(f"{file}: {_first_error(name, exc)}") from exc
    return envs


def load_environment(name: str, path: str | os.PathLike[str] | None = None) -> Environment:
    """Return one validated environment; ConfigError if the file has no table of that name."""
    envs = load_environments(path)
    if name not in envs:
        raise ConfigError(f"{config_path(path)}: no [{name}] table; defined: {sorted(envs)}")
    return envs[name]


def _first_error(env_name: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join([env_name, *(str(p) for p in err["loc"])])
    msg = re.sub(r"^Value error, ", "", err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{key}: {msg}"
