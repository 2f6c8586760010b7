"""Strict emulation: the patched moto server refuses what AWS refuses for lack of IAM permission.

moto checks no IAM for SageMaker, ECS or ECR. Here, when a training job is created, an endpoint
is created or updated, or an ECS task or service starts, the calls AWS would make under the roles
involved (mlplatform.emulator.role_calls) are decided against the roles' deployed policies
(mlplatform.emulator.policy_evaluation), read from moto's IAM, where CloudFormation created them.
A refusal shows as AWS shows it: the training job or new endpoint Failed with a FailureReason, an
endpoint update rolled back with a FailureReason, an ECS task STOPPED before its container ran.
An image this account's ECR does not hold fails the same way (CannotPullContainerError): an
endpoint, job or task that names a digest nobody pushed never starts in AWS either.
Every decision is appended as a JSON line to the file named by MLP_EMULATOR_AUTHORIZATIONS, which
the tests read (a refusal fails them; grants no call used are reported).

What it cannot show: resource policies (bucket, key and repository policies are not evaluated:
moto's CloudFormation skips bucket policies), service control policies and permission boundaries,
and the calls of code the kit does not describe (only the MLflow server's and the training
code's own calls are modelled). ECS services start no task in moto: their decisions are recorded,
not shown as failed deployments.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from moto.ecr.exceptions import ImageNotFoundException, RepositoryNotFoundException
from moto.ecr.models import ecr_backends
from moto.ecs.models import EC2ContainerServiceBackend
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.sagemaker.models import SageMakerModelBackend
from moto.secretsmanager.models import secretsmanager_backends

from mlplatform.emulator.account import AUTHORIZATIONS_VARIABLE
from mlplatform.emulator.policy_evaluation import (
    Decision,
    NamedPolicy,
    evaluate,
    service_may_assume,
)
from mlplatform.emulator.role_calls import RoleCalls, endpoint_calls, task_calls, training_job_calls

__all__ = ["MotoAccount", "authorize", "install"]

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9._/-]+)(?:@(?P<digest>sha256:[0-9a-f]{64})|:(?P<tag>[\w.-]+))?$"
)


def missing_image(images: Iterable[str]) -> str | None:
    """The pull failure of the first image the emulated ECR does not hold, if any.

    Images outside ECR are not checked: nothing here can know them.
    """
    for image in images:
        match = _ECR_IMAGE.match(image)
        if match is None:
            continue
        wanted = (
            {"imageDigest": match["digest"]}
            if match["digest"]
            else {"imageTag": match["tag"] or "latest"}
        )
        backend = ecr_backends[match["account"]][match["region"]]
        try:
            backend.describe_images(match["repository"], image_ids=[wanted])
        except (ImageNotFoundException, RepositoryNotFoundException):
            return f"CannotPullContainerError: {image}: not found in ECR"
    return None


class MotoAccount:
    """Names in one emulated account resolved from moto's backends (role_calls.Account)."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def bucket_key(self, bucket: str) -> str | None:
        """The KMS key ARN of a bucket's default encryption, if it uses one."""
        found = s3_backends[self.account]["aws"].buckets.get(bucket)
        rule = ((found.encryption or {}).get("Rule") or {}) if found else {}
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        key = default.get("KMSMasterKeyID")
        if not key:
            return None
        if key.startswith("arn:"):
            return str(key)
        kms = kms_backends[self.account][self.region]
        return str(kms.describe_key(kms.any_id_to_key_id(key)).arn)

    def secret_arn(self, secret_id: str) -> str:
        """The ARN of a secret by name (an unknown name stays a name: no policy matches it)."""
        try:
            return str(
                secretsmanager_backends[self.account][self.region].describe_secret(secret_id).arn
            )
        except Exception:  # moto raises its own not-found types per version
            return secret_id


def _policies(account: str, role_arn: str) -> tuple[dict[str, Any], list[NamedPolicy]] | None:
    try:
        role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
    except Exception:  # moto's IAMNotFoundException
        return None
    trust = role.assume_role_policy_document
    policies = [
        NamedPolicy(name, json.loads(doc) if isinstance(doc, str) else doc)
        for name, doc in role.policies.items()
    ]
    for arn, managed in role.managed_policies.items():
        version = next(v for v in managed.versions if v.is_default)
        document = version.document
        policies.append(
            NamedPolicy(arn, json.loads(document) if isinstance(document, str) else document)
        )
    return (json.loads(trust) if isinstance(trust, str) else trust), policies


def authorize(calls: RoleCalls, account: str) -> list[Decision]:
    """Decide every call of one role; record the decisions; return them."""
    found = _policies(account, calls.role_arn)
    decisions: list[Decision] = []
    for request in calls.requests:
        if found is None:
            decision = Decision(request, False, (), f"role {calls.role_arn!r} does not exist")
        elif not service_may_assume(found[0], calls.service):
            decision = Decision(
                request, False, (), f"{calls.service} may not assume {calls.role_arn}"
            )
        else:
            decision = evaluate(request, found[1])
        decisions.append(decision)
    _record(decisions)
    return decisions


def _record(decisions: Iterable[Decision]) -> None:
    path = os.environ.get(AUTHORIZATIONS_VARIABLE)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        for d in decisions:
            r = d.request
            line = {
                "principal": r.principal,
                "action": r.action,
                "resource": r.resource,
                "why": r.why,
                "allowed": d.allowed,
                "statements": list(d.statements),
                "reason": d.reason,
            }
            out.write(json.dumps(line) + "\n")


def _first_refusal(roles: Iterable[RoleCalls], account: str) -> Decision | None:
    """Authorize each role's calls in turn; the first refusal, if any (later roles unchecked)."""
    for calls in roles:
        refused = next((d for d in authorize(calls, account) if not d.allowed), None)
        if refused is not None:
            return refused
    return None


def _refusal_text(refused: Decision) -> str:
    r = refused.request
    return (
        f"{r.why}: {refused.reason}"
        if refused.reason.startswith(r.principal)
        else (f"{r.why}: {r.principal} cannot {r.action} on {r.resource} ({refused.reason})")
    )


def _endpoint_failure(backend: Any, endpoint: str, config_name: str) -> str | None:
    """Why SageMaker fails `endpoint` on `config_name`: a refused call, or an image not found."""
    config = backend.describe_endpoint_config(config_name)
    acct = MotoAccount(backend.account_id, backend.region_name)
    models = [
        (variant["VariantName"], backend.describe_model(variant["ModelName"]).response_object)
        for variant in config["ProductionVariants"]
    ]
    roles = (endpoint_calls(model, endpoint, variant, acct) for variant, model in models)
    refused = _first_refusal(roles, backend.account_id)
    if refused is not None:
        return _refusal_text(refused)
    return missing_image(
        container["Image"]
        for _, model in models
        for container in [model.get("PrimaryContainer") or {}, *model.get("Containers", [])]
        if "Image" in container
    )


_INSTALLED = False
_create_endpoint = SageMakerModelBackend.create_endpoint
_create_training_job = SageMakerModelBackend.create_training_job
_run_task = EC2ContainerServiceBackend.run_task
_create_service = EC2ContainerServiceBackend.create_service
_update_service = EC2ContainerServiceBackend.update_service


def _strict_create_endpoint(
    self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any
) -> Any:
    endpoint = _create_endpoint(self, endpoint_name, endpoint_config_name, tags)
    failure = _endpoint_failure(self, endpoint_name, endpoint_config_name)
    if failure is not None:
        endpoint.endpoint_status = "Failed"
        setattr(endpoint, "failure_reason", failure)  # noqa: B010 (None-typed in moto)
    return endpoint


def strict_update_check(backend: Any, endpoint_name: str, config_name: str) -> str | None:
    """The reason an update of `endpoint_name` to `config_name` fails in AWS, if it does.

    None until install() ran: in-process moto (unit tests) stays lax.
    """
    if not _INSTALLED:
        return None
    return _endpoint_failure(backend, endpoint_name, config_name)


def _strict_create_training_job(
    self: Any, training_job_name: str, *args: Any, **kwargs: Any
) -> Any:
    job = _create_training_job(self, training_job_name, *args, **kwargs)
    request = {
        "TrainingJobName": training_job_name,
        "RoleArn": job.role_arn,
        "AlgorithmSpecification": job.algorithm_specification,
        "InputDataConfig": job.input_data_config,
        "OutputDataConfig": job.output_data_config,
        "VpcConfig": job.vpc_config,
        "CheckpointConfig": job.checkpoint_config,
        "ResourceConfig": job.resource_config,
        "Environment": _ENVIRONMENTS.pop(training_job_name, {}),
    }
    acct = MotoAccount(self.account_id, self.region_name)
    refused = _first_refusal([training_job_calls(request, acct)], self.account_id)
    failure = (
        "ClientError: " + _refusal_text(refused)
        if refused is not None
        else missing_image([job.algorithm_specification["TrainingImage"]])
    )
    if failure is not None:
        job.training_job_status = job.secondary_status = "Failed"
        setattr(job, "failure_reason", failure)  # noqa: B010 (moto has no such field)
    return job


# moto drops a training job's Environment; the response handler keeps it here for the check.
_ENVIRONMENTS: dict[str, dict[str, str]] = {}


def _definition_refusal(backend: Any, definition_arn: str | None) -> Decision | None:
    found = backend.describe_task_definition(definition_arn)
    definition = {
        "family": found.family,
        "containerDefinitions": found.container_definitions,
        "executionRoleArn": getattr(found, "execution_role_arn", None),
        "taskRoleArn": getattr(found, "task_role_arn", None),
    }
    acct = MotoAccount(backend.account_id, backend.region_name)
    return _first_refusal(task_calls(definition, acct), backend.account_id)


def _strict_run_task(
    self: Any, cluster_str: str, task_definition_str: str, *args: Any, **kwargs: Any
) -> Any:
    tasks = _run_task(self, cluster_str, task_definition_str, *args, **kwargs)
    if tasks:
        arn = tasks[0].task_definition_arn
        refused = _definition_refusal(self, arn)
        failure = (
            "ResourceInitializationError: " + _refusal_text(refused)
            if refused is not None
            else missing_image(
                c["image"] for c in self.describe_task_definition(arn).container_definitions
            )
        )
        if failure is not None:
            for task in tasks:
                task.status = "STOPPED"
                task.desired_status = "STOPPED"
                task.stopped_reason = failure
                for container in task.containers:
                    setattr(container, "exitCode", None)  # noqa: B010 (int-typed in moto)
    return tasks


def _strict_create_service(self: Any, *args: Any, **kwargs: Any) -> Any:
    service = _create_service(self, *args, **kwargs)
    _definition_refusal(self, service.task_definition)
    return service


def _strict_update_service(self: Any, service_properties: dict[str, Any]) -> Any:
    service = _update_service(self, service_properties)
    _definition_refusal(self, service.task_definition)
    return service


def install() -> None:
    """Patch moto's SageMaker and ECS backends (the server process calls this once)."""
    global _INSTALLED
    _INSTALLED = True
    from moto.sagemaker.responses import SageMakerResponse

    create_job_response = SageMakerResponse.create_training_job

    def keep_environment(response: Any) -> Any:
        _ENVIRONMENTS[response._get_param("TrainingJobName")] = (
            response._get_param("Environment") or {}
        )
        return create_job_response(response)

    setattr(SageMakerResponse, "create_training_job", keep_environment)  # noqa: B010
    SageMakerModelBackend.create_endpoint = _strict_create_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.create_training_job = _strict_create_training_job  # type: ignore[method-assign]
    EC2ContainerServiceBackend.run_task = _strict_run_task  # type: ignore[method-assign]
    EC2ContainerServiceBackend.create_service = _strict_create_service  # type: ignore[method-assign]
    EC2ContainerServiceBackend.update_service = _strict_update_service  # type: ignore[method-assign]
