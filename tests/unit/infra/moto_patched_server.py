"""moto's server with the fixes the emulated deploy needs (run as a script, never imported).

    python tests/unit/infra/moto_patched_server.py -H 127.0.0.1 -p 45991

moto 5.2 bugs worked around here, in the emulator, not in the stacks:
- a CloudFormation ``Ref`` to AWS::RDS::DBParameterGroup returns the Python object instead of
  the group's name, so any DBInstance with a custom parameter group fails to create;
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

import json
import secrets
import sys
from typing import Any

from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.elbv2.models import FakeTargetGroup
from moto.rds.models import DBParameterGroup
from moto.secretsmanager.models import secretsmanager_backends
from moto.server import main


def _physical_resource_id(self: DBParameterGroup) -> str:
    return self.name


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
    def create_from_cloudformation_json(  # type: ignore[override]
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
    def create_from_cloudformation_json(  # type: ignore[override]
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
    def create_from_cloudformation_json(  # type: ignore[override]
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


DBParameterGroup.physical_resource_id = property(_physical_resource_id)  # type: ignore[attr-defined]
FakeTargetGroup.get_cfn_attribute = _target_group_attribute  # type: ignore[attr-defined]
CloudFormationResponse.update_termination_protection = _update_termination_protection  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
