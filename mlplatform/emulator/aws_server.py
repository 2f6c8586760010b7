"""moto's server with the fixes the emulated deploys need (run as a program, never imported).

    MOTO_ACCOUNT_ID=222222222222 python -m mlplatform.emulator.aws_server -H 127.0.0.1 -p 45991

moto 5.2 bugs and gaps worked around here, in the emulator, not in the stacks:
- an executed change set updates the stack's resources but keeps the outputs of the template it
  replaced (a created stack has none) and registers no exports, and a stack created for a change
  set cannot import other stacks' exports: CDK's default change-set deploy fails without this;
- change sets are looked up by name across all stacks (CDK names every one cdk-deploy-change-set),
  deleting a missing one crashes and a deleted one is still found in another stack, so CDK's
  second deploy of a stack waits for ever for its old change set to be gone; an update change
  set passes an SSM-typed parameter's resolved value where its name is needed;
- SageMaker UpdateEndpoint is missing (sagemaker_update_endpoint.py), and InvokeEndpoint answers
  canned text: sagemaker_runtime.py has the endpoint's model answer, in the environment of its
  image's lock, read from the pushed image's config, which ECR keeps here (ecr_images.py);
- IAM is checked for no SageMaker, ECS or ECR call: strict_iam.py decides the calls AWS makes
  under the deployed roles and fails jobs, endpoints and tasks as AWS does;
- a task definition created by CloudFormation loses its execution and task roles, network mode,
  CPU and platform (moto registers family, containers, volumes and memory only), and a Fargate
  task in a VPC without DNS host names fails on its network interface's DNS name;
- RunTask fails on a Fargate task definition whose container has no memory of its own (the
  task-level memory is what Fargate needs, and what CDK writes);
- a stack update that replaces a task definition registers the new revision with the template's
  PascalCase keys (no `image`), and leaves a service that uses it on the old, deregistered
  revision;
- a CloudFormation ``Ref`` to AWS::RDS::DBParameterGroup returns the Python object instead of
  the group's name, so any DBInstance with a custom parameter group fails to create;
- Fn::GetAtt of a log group's Arn lacks the ":*" CloudFormation gives it, so the log permissions
  CDK grants on it would cover no log stream;
- UpdateTerminationProtection is not implemented, which the CDK CLI calls for protected stacks;
- a target group has no CloudFormation attributes (Fn::GetAtt TargetGroupFullName fails), which
  CloudWatch metrics on the target group need;
- AWS::SecretsManager::Secret and ::SecretTargetAttachment are skipped, so every stack that imports
  a secret fails. A minimal model creates the secret (JSON template + generated key, or a plain
  generated string) so the names and JSON shape can be described after the deploy. Rotation,
  resource policies and exclude-character rules are NOT emulated;
- AWS::CloudWatch::Alarm is skipped, so the dashboard's Fn::GetAtt on an alarm fails. A minimal
  model creates the alarm (name, threshold, comparison, actions; a metric-math alarm keeps its
  threshold and actions but not its expression) so names and actions can be described.
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition, ecs_backends
from moto.elbv2.models import FakeTargetGroup
from moto.logs.models import LogGroup
from moto.rds.models import DBParameterGroup
from moto.secretsmanager.models import secretsmanager_backends
from moto.server import main

from mlplatform.emulator import ecr_images, sagemaker_runtime, strict_iam
from mlplatform.emulator.sagemaker_update_endpoint import update_endpoint_supported


def _physical_resource_id(self: DBParameterGroup) -> str:
    return self.name


_execute_change_set = CloudFormationBackend.execute_change_set


def _execute_change_set_with_outputs(
    self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
) -> None:
    change_set = self.change_sets.get(change_set_name) or next(
        cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name
    )
    stack = self.stacks[change_set.stack_id]
    # UsePreviousValue was resolved to the parameter's value, which an SSM-typed parameter
    # (CDK's BootstrapVersion) then looks up as a parameter name: give back the previous input.
    resolved = getattr(stack, "stack_parameters", {}) or {}
    for key, value in list((change_set.parameters or {}).items()):
        if resolved.get(key) == value:
            if key in stack.parameters:
                change_set.parameters[key] = stack.parameters[key]
            else:  # the previous value was the template's default
                del change_set.parameters[key]
    # A stack made for a change set does not see other stacks' exports (Fn::ImportValue).
    stack.cross_stack_resources = self.exports
    stack.resource_map.cross_stack_resources = self.exports
    _execute_change_set(self, change_set_name, stack_name)
    stack._parse_template()
    stack.output_map = stack._create_output_map()
    for export in stack.exports:
        self.exports[export.name] = export
    _services_follow_their_task_definitions(stack)


def _task_definition_update(
    cls: type[TaskDefinition],
    original_resource: TaskDefinition,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> TaskDefinition:
    properties = cloudformation_json["Properties"]
    wanted = remap_nested_keys(properties.get("ContainerDefinitions", []), pascal_to_camelcase)
    if (
        original_resource.family == properties.get("Family")
        and original_resource.container_definitions == wanted
    ):
        return original_resource
    ecs_backends[account_id][region_name].deregister_task_definition(original_resource.arn)
    # The create path, which maps the template's keys as the ECS API has them.
    return cls.create_from_cloudformation_json(
        new_resource_name, cloudformation_json, account_id, region_name
    )


def _task_definition_create(
    cls: type[TaskDefinition],
    /,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> TaskDefinition:
    """Register a template's task definition with its roles, network mode and sizes.

    moto's own create keeps only family, containers, volumes and memory: a task definition from
    CloudFormation had no execution or task role, so no IAM check could see who pulls the image.
    """
    p = cloudformation_json["Properties"]
    remap = functools.partial(remap_nested_keys, key_transform=pascal_to_camelcase)
    return ecs_backends[account_id][region_name].register_task_definition(
        family=p.get("Family") or resource_name,
        container_definitions=remap(p.get("ContainerDefinitions", [])),
        volumes=remap(p.get("Volumes", [])),
        network_mode=p.get("NetworkMode"),
        requires_compatibilities=p.get("RequiresCompatibilities"),
        cpu=p.get("Cpu"),
        memory=p.get("Memory"),
        task_role_arn=p.get("TaskRoleArn"),
        execution_role_arn=p.get("ExecutionRoleArn"),
        runtime_platform=remap(p["RuntimePlatform"]) if "RuntimePlatform" in p else None,
    )


def _services_follow_their_task_definitions(stack: Any) -> None:
    """An updated ECS service takes the task definition revision the update registered.

    moto updates the service with the Ref it resolved before the task definition was replaced,
    so a service whose image changed kept the old (deregistered) revision.
    """
    for logical_id, resource in stack.template_dict.get("Resources", {}).items():
        ref = resource.get("Properties", {}).get("TaskDefinition")
        if resource.get("Type") != "AWS::ECS::Service" or not isinstance(ref, dict):
            continue
        service, definition = stack.resource_map[logical_id], stack.resource_map[ref["Ref"]]
        if service.task_definition != definition.arn:
            ecs_backends[stack.account_id][stack.region_name].update_service(
                {
                    "cluster": service.cluster_name,
                    "service": service.name,
                    "task_definition": definition.arn,
                }
            )


_task_resources = EC2ContainerServiceBackend._calculate_task_resource_requirements


def _task_resources_with_task_memory(task_definition: Any) -> dict[str, Any]:
    containers = task_definition.container_definitions
    for container in containers:
        if not any(k in container for k in ("memory", "Memory", "memoryReservation")):
            container["memoryReservation"] = 0
    return dict(_task_resources(task_definition))


class _ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"


def _change_set_id(self: CloudFormationResponse) -> str | None:
    """The change set the request names, within the request's stack (None: no such set)."""
    name = self._get_param("ChangeSetName")
    stack = self._get_param("StackName")
    sets = self.cloudformation_backend.change_sets
    if name in sets:  # an ARN
        return str(name)
    for set_id, change_set in sets.items():
        if change_set.change_set_name == name and stack in (
            None,
            change_set.stack_name,
            change_set.stack_id,
        ):
            return str(set_id)
    return None


def _describe_change_set(self: CloudFormationResponse) -> Any:
    from moto.core.responses import ActionResult

    set_id = _change_set_id(self)
    if set_id is None:
        raise _ChangeSetNotFound(f"ChangeSet [{self._get_param('ChangeSetName')}] does not exist")
    return ActionResult(self.cloudformation_backend.describe_change_set(set_id))


def _delete_change_set(self: CloudFormationResponse) -> Any:
    from moto.core.responses import EmptyResult

    set_id = _change_set_id(self)
    if set_id is not None:
        self.cloudformation_backend.delete_change_set(set_id)
    return EmptyResult()


def _execute_change_set_response(self: CloudFormationResponse) -> Any:
    from moto.core.responses import EmptyResult

    set_id = _change_set_id(self)
    if set_id is None:
        raise _ChangeSetNotFound(f"ChangeSet [{self._get_param('ChangeSetName')}] does not exist")
    self.cloudformation_backend.execute_change_set(set_id, self._get_param("StackName"))
    return EmptyResult()


def _update_termination_protection(self: CloudFormationResponse) -> str:
    stack_name = self._get_param("StackName")
    enabled = self._get_bool_param("EnableTerminationProtection", False)
    stack = self.cloudformation_backend.get_stack(stack_name)
    stack.enable_termination_protection = enabled
    return (
        "<UpdateTerminationProtectionResponse>"
        "<UpdateTerminationProtectionResult>"
        f"<StackId>{stack.stack_id}</StackId>"
        "</UpdateTerminationProtectionResult>"
        "</UpdateTerminationProtectionResponse>"
    )


_log_group_attribute = LogGroup.get_cfn_attribute


def _log_group_arn_with_streams(self: LogGroup, attribute_name: str) -> Any:
    # CloudFormation's Fn::GetAtt LogGroup.Arn ends in ":*" (it covers the group's streams);
    # moto's does not, so a policy granting CreateLogStream on it would cover no stream.
    if attribute_name == "Arn":
        return f"{self.arn}:*"
    return _log_group_attribute(self, attribute_name)


def _target_group_attribute(self: FakeTargetGroup, name: str) -> object:
    # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
    full_name = self.arn.split(":", 5)[5]
    values = {
        "TargetGroupFullName": full_name,
        "TargetGroupName": self.name,
        "TargetGroupArn": self.arn,
        "LoadBalancerArns": list(getattr(self, "load_balancer_arns", [])),
    }
    return values[name]


class _ResourceBase:
    """What moto's CloudFormation needs from a model besides creating it."""

    def __init__(self, arn: str) -> None:
        self.physical_resource_id = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def update_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the emulated deploy creates stacks only")

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
        return None

    def is_created(self) -> bool:
        return True


# moto lists direct subclasses of CloudFormationModel only, and its metaclass files a class
# under the service named in its module path: hence the base order and __module__.
class _CfnSecret(_ResourceBase, CloudFormationModel):
    __module__ = "moto.secretsmanager.cfn_emulation"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _CfnSecret:
        props = cloudformation_json["Properties"]
        generate = props.get("GenerateSecretString") or {}
        value = props.get("SecretString")
        if value is None:
            password = secrets.token_hex(16)
            template = generate.get("SecretStringTemplate")
            if template:
                data = json.loads(template)
                data[generate["GenerateStringKey"]] = password
                value = json.dumps(data)
            else:
                value = password
        created = secretsmanager_backends[account_id][region_name].create_secret(
            name=props.get("Name") or resource_name,
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=props.get("Tags"),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        return cls(json.loads(created)["ARN"])


class _CfnSecretTargetAttachment(_ResourceBase, CloudFormationModel):
    __module__ = "moto.secretsmanager.cfn_emulation"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::SecretTargetAttachment"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _CfnSecretTargetAttachment:
        # Its Ref is the attached secret's ARN, which is all the importing stacks use.
        return cls(cloudformation_json["Properties"]["SecretId"])


class _CfnAlarm(_ResourceBase, CloudFormationModel):
    __module__ = "moto.cloudwatch.cfn_emulation"

    def __init__(self, name: str, arn: str) -> None:
        super().__init__(name)  # Ref of an alarm is its name
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _CfnAlarm:
        p = cloudformation_json["Properties"]
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=p.get("AlarmName") or resource_name,
            namespace=p.get("Namespace", ""),
            metric_name=p.get("MetricName", ""),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period", 300)),
            threshold=float(p["Threshold"]),
            statistic=p.get("Statistic", ""),
            description=p.get("AlarmDescription", ""),
            dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            datapoints_to_alarm=p.get("DatapointsToAlarm"),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return cls(alarm.name, alarm.alarm_arn)


# A Fargate task (awsvpc) gets an ENI, whose DNS name moto sets only in VPCs it thinks have DNS
# host names; the task then reads an attribute that does not exist.
# Patches of moto's classes, as setattr: the replacements do not match moto's typed signatures.
_PATCHES: list[tuple[Any, str, Any]] = [
    (NetworkInterface, "private_dns_name", None),
    (DBParameterGroup, "physical_resource_id", property(_physical_resource_id)),
    (FakeTargetGroup, "get_cfn_attribute", _target_group_attribute),
    (LogGroup, "get_cfn_attribute", _log_group_arn_with_streams),
    (CloudFormationResponse, "update_termination_protection", _update_termination_protection),
    (CloudFormationResponse, "describe_change_set", _describe_change_set),
    (CloudFormationResponse, "delete_change_set", _delete_change_set),
    (CloudFormationResponse, "execute_change_set", _execute_change_set_response),
    (CloudFormationBackend, "execute_change_set", _execute_change_set_with_outputs),
    (TaskDefinition, "update_from_cloudformation_json", classmethod(_task_definition_update)),
    (TaskDefinition, "create_from_cloudformation_json", classmethod(_task_definition_create)),
    (
        EC2ContainerServiceBackend,
        "_calculate_task_resource_requirements",
        staticmethod(_task_resources_with_task_memory),
    ),
]
for owner, attribute, value in _PATCHES:
    setattr(owner, attribute, value)

if __name__ == "__main__":
    strict_iam.install()
    ecr_images.install()
    sagemaker_runtime.install()
    with update_endpoint_supported():
        main(sys.argv[1:])
