"""Every exception the library raises; only the task layer turns them into messages and exit codes.

    PlatformError
     ├── ConfigError                environments.toml or an environment variable is wrong
     ├── SystemDependencyError      a program the stack needs is not installed
     ├── RuntimeSelectionError      the requested runtime cannot run here
     ├── PortInUseError             a port the stack needs is taken by something else
     ├── ServiceStartError          a service did not become ready (carries its log tail)
     ├── EmulatorError              the AWS emulator refused a call the kit made
     ├── UnsupportedPolicy          an IAM policy uses what the strict emulator cannot decide
     ├── TrainingError              a training job could not start or failed (its reason)
     ├── RegistryError              a registry operation was refused or found nothing
     │    ├── PromotionError        a promoted copy does not match its manifest
     │    └── ReproduceError        a version cannot be rebuilt faithfully (which lineage fails)
     ├── EndpointError              SageMaker refused an endpoint operation
     ├── ImageError                 an image archive or layout is unreadable or inconsistent
     │    └── EngineMissingError    no container engine answers (what to install)
     ├── MigrationError             the migrate task could not run or exited non-zero
     ├── DeployError                a step of `invoke deploy` failed; later steps did not run
     ├── CdkCommandError            the CDK CLI is missing or failed
     └── ConfirmationRequiredError  a destructive command was not confirmed by name

Every message is one line that says what to do; details (log tails) live in attributes. A
translation keeps its cause (`raise ... from exc`), so a debugger or a log shows what failed
underneath; the task layer prints the message alone.
"""

from __future__ import annotations

__all__ = [
    "CdkCommandError",
    "ConfigError",
    "ConfirmationRequiredError",
    "DeployError",
    "EmulatorError",
    "EndpointError",
    "EngineMissingError",
    "ImageError",
    "MigrationError",
    "PlatformError",
    "PortInUseError",
    "PromotionError",
    "RegistryError",
    "ReproduceError",
    "RuntimeSelectionError",
    "ServiceStartError",
    "SourceError",
    "SystemDependencyError",
    "TrainingError",
    "UnsupportedPolicy",
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


class SourceError(TrainingError):
    """A training source is malformed, unlocked, or its environment cannot be made."""


class RegistryError(PlatformError):
    """The model registry refused an operation or has no such model, version or alias."""


class PromotionError(RegistryError):
    """The copy in the target does not match the source, or the registry refused a step."""


class UnsupportedPolicy(PlatformError):
    """A policy uses an element or condition operator the strict emulator does not implement."""


class ReproduceError(RegistryError):
    """A registered version cannot be rebuilt faithfully: the message says what fails."""


class EndpointError(PlatformError):
    """SageMaker refused an endpoint operation, or the request itself is invalid."""


class ImageError(PlatformError):
    """An image archive or layout cannot be read, or does not match its own digests."""


class EngineMissingError(ImageError):
    """No container engine answers: nothing can be built, saved or run in a container."""


class MigrationError(PlatformError):
    """The migrate task could not run, did not stop, or exited non-zero."""


class DeployError(PlatformError):
    """A step of the chain failed; the steps after it did not run."""


class CdkCommandError(PlatformError):
    """The CDK CLI is missing or exited non-zero."""


class ConfirmationRequiredError(PlatformError):
    """A destructive command on a protected environment was not confirmed by name."""
