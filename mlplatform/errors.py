"""Exceptions the library raises; only the task layer turns them into messages and exit codes.

    PlatformError
     ├── ConfigError            environments.toml or an environment variable is wrong
     ├── SystemDependencyError  a program the stack needs is not installed
     ├── RuntimeSelectionError  the requested runtime cannot run here
     ├── PortInUseError         a port the stack needs is taken by something else
     ├── ServiceStartError      a service did not become ready (carries its recent log lines)
     ├── EmulatorError          the AWS emulator refused a call the kit made
     ├── TrainingError          a training job could not start or failed (its reason, one line)
     ├── RegistryError          a registry operation (alias, gate) was refused or found nothing
     │    └── PromotionError    (mlplatform.registry.promotion) a copy does not match its manifest
     ├── EndpointError          (mlplatform.serving.rollout) SageMaker refused an endpoint operation
     ├── CdkCommandError        (mlplatform.release.cdk_cli) the CDK CLI is missing or failed
     └── ConfirmationRequiredError  (mlplatform.release.cdk_cli) a destructive command, unconfirmed

Every message is one line that says what to do; details (log tails) live in attributes.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmulatorError",
    "PlatformError",
    "PortInUseError",
    "RegistryError",
    "RuntimeSelectionError",
    "ServiceStartError",
    "SystemDependencyError",
    "TrainingError",
]


class PlatformError(Exception):
    """Base of every error a user can cause or fix."""


class ConfigError(PlatformError):
    """A configuration file or variable is invalid: the message names the file, key and reason."""


class SystemDependencyError(PlatformError):
    """A program the stack needs is missing and could not be installed."""


class RuntimeSelectionError(PlatformError):
    """The requested runtime is unknown or cannot run on this machine."""


class PortInUseError(PlatformError):
    """A port the stack needs is held by a process that is not part of the stack."""


class ServiceStartError(PlatformError):
    """A service did not become ready before its deadline.

    `log_tail` holds the service's last log lines so the failure explains itself.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class EmulatorError(PlatformError):
    """The AWS emulator (or AWS) rejected a call made while seeding the stack."""


class TrainingError(PlatformError):
    """A training job could not be started, or it failed; the message is the job's reason."""


class RegistryError(PlatformError):
    """The model registry refused an operation or has no such model, version or alias."""
