"""Helpers for cdk-nag 3.x acknowledgments (CDK's native ``Validations`` API).

Every acknowledgment names one rule finding on one construct and says why it is acceptable
there; ``infra.app.build_app`` registers the AwsSolutions pack, and synth fails on any finding
that is not acknowledged.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from mlplatform.config import Environment

__all__ = ["PACK", "acknowledge", "iam5_resource", "rendered_object_arn"]


PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on ``construct`` and the resources under it.

    ``rule_id`` is the rule as cdk-nag reports it (``AwsSolutions-RDS11``, or for per-finding
    rules ``AwsSolutions-IAM5[Resource::...]``); it is recorded with the pack's prefix
    (``AwsSolutions::``), the form cdk-nag prints, so the audit trail names the plugin. A rule of
    another validation plugin is passed already qualified (``CloudFormation-Validate::W3010``).
    """
    qualified = rule_id if "::" in rule_id.split("[", 1)[0] else f"{PACK}::{rule_id}"
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=qualified, reason=reason))


def iam5_resource(arn: str) -> str:
    """The finding id cdk-nag gives a wildcard resource ARN in an IAM policy."""
    return f"AwsSolutions-IAM5[Resource::{arn}]"


def rendered_object_arn(env: Environment, key_pattern: str) -> str:
    """How cdk-nag renders ``infra.naming.object_arn(...)`` (partition as a pseudo ref)."""
    return f"arn:<AWS::Partition>:s3:::{env.bucket_name}/{key_pattern}"
