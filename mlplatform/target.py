"""The environment a task works on, resolved once: its settings, registry, AWS clients and stacks.

    local, prod = resolve_targets("local", "prod")       # environments.toml read once
    with prod.registry().client() as client: ...        # MLflow, logged in as the admin
    prod.client("sagemaker")                            # boto3, AWS or an emulator alike
    prod.outputs("network", Output.PRIVATE_SUBNET_IDS)  # the deployed stack's outputs

Only here does the kit tell the local environment from a cloud one. The local target reaches the
running stack (its ports and generated credentials, checked healthy first); a cloud target goes
through boto3's own chain, with AWS_ENDPOINT_URL pointing it at an emulator and
MLPLATFORM_MLFLOW_URL_<ENV> at an emulated or tunnelled registry: one code path for both. Nothing
is looked up until asked, so a target costs one parse of environments.toml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlplatform.cloud import aws
from mlplatform.cloud.stack_outputs import DeployedStack, describe_stack, mlflow_url, stack_outputs
from mlplatform.cloud.user_logins import Logins
from mlplatform.config import Environment, config_path, load_environments
from mlplatform.errors import ConfigError, PlatformError
from mlplatform.local.access import LocalEndpoints, local_stack
from mlplatform.local.aws_side import local_client
from mlplatform.local.credentials import Credentials
from mlplatform.names import stack_name
from mlplatform.paths import StatePaths, state_paths
from mlplatform.registry.client import Registry

__all__ = ["LOCAL", "Target", "resolve_target", "resolve_targets"]

# The environment the local stack serves; every other one is a cloud environment.
LOCAL = "local"


@dataclass(frozen=True)
class Target:
    """One environment of environments.toml, and how the kit reaches it."""

    env: Environment
    paths: StatePaths  # the kit's state folder (the local stack's, emulations beside it)

    @property
    def name(self) -> str:
        """The environment's name in environments.toml."""
        return self.env.name

    @property
    def is_local(self) -> bool:
        """True for the local stack's environment, False for a cloud one (real or emulated)."""
        return self.env.name == LOCAL

    def cloud_only(self, why: str, error: type[PlatformError] = PlatformError) -> None:
        """`error` in one line, `why` and what to do instead, when this is the local environment.

        `why` reads as the start of the line: "deploy targets a cloud environment".
        """
        if self.is_local:
            raise error(f"{why}; use --env staging or prod")

    def local_stack(
        self, services: tuple[str, ...] = ("s3", "aws", "mlflow")
    ) -> tuple[Credentials, LocalEndpoints]:
        """The running local stack's credentials and endpoints, `services` checked healthy."""
        if not self.is_local:
            raise PlatformError(f"the local stack serves the local environment, not {self.name!r}")
        return local_stack(self.env, self.paths, services)

    def client(self, service: str) -> Any:
        """A boto3 client: the local stack's S3 or emulator, else boto3's chain for the cloud."""
        if self.is_local:
            creds = self.local_stack(("s3" if service == "s3" else "aws",))[0]
            return local_client(service, self.env, creds)
        return aws.client(service, region=self.env.region)

    def registry(self, user: str | None = None) -> Registry:
        """The environment's registry, logged in as `user` (its login from Secrets Manager).

        Without a user: the environment's admin (the kit's own registry work, `team-sync`).
        """
        if self.is_local:
            creds, endpoints = self.local_stack(("mlflow",))
            url, admin = endpoints.tracking_uri, (creds.admin_username, creds.admin_password)
        else:
            url = mlflow_url(self.env, self.client("cloudformation"))
            secret = aws.json_secret(self.env, self.env.admin_secret_name, "MLflow admin")
            admin = (secret["username"], secret["password"])
        if user is None:
            return Registry(self.name, url, *admin)
        password = Logins(self.env, self.client("secretsmanager")).required(user)
        return Registry(self.name, url, user, password)

    def stack(self, part: str, error: type[PlatformError] = PlatformError) -> DeployedStack | None:
        """One of the environment's stacks as CloudFormation reports it (None: not deployed)."""
        self.cloud_only(f"the local environment has no stack {part}", error)
        return describe_stack(self.client("cloudformation"), stack_name(self.env, part), error)

    def outputs(
        self, part: str, keys: Sequence[str], error: type[PlatformError] = PlatformError
    ) -> dict[str, str]:
        """The outputs of one deployed stack, `keys` required (`error` in one line otherwise)."""
        self.cloud_only(f"the local environment has no stack {part}", error)
        return stack_outputs(
            self.client("cloudformation"), stack_name(self.env, part), tuple(keys), error
        )


def resolve_targets(*names: str, paths: StatePaths | None = None) -> tuple[Target, ...]:
    """The targets of `names`, from one read of environments.toml; ConfigError naming a typo."""
    envs = load_environments()
    unknown = [n for n in names if n not in envs]
    if unknown:
        raise ConfigError(f"{config_path()}: no [{unknown[0]}] table; defined: {sorted(envs)}")
    where = paths or state_paths()
    return tuple(Target(envs[n], where) for n in names)


def resolve_target(name: str, paths: StatePaths | None = None) -> Target:
    """The target of one environment (see resolve_targets)."""
    return resolve_targets(name, paths=paths)[0]
