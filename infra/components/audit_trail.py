"""The account's audit trail: CloudTrail management events and the artifact bucket's data events.

Logs go to a bucket of their own: SSE-KMS with a key of its own (rotated), SSL only, versioned,
access-logged, every object kept `retention_days`, and both retained when the stack goes (logs
are evidence). File validation lets an auditor prove no log file was changed or removed.
Together with the MLflow server's audit lines (who did what inside MLflow, `invoke audit`), it
answers who changed the platform's AWS resources and who read or wrote its artifacts.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.log_bucket import PRIVATE_BUCKET

__all__ = ["AuditTrail"]


class AuditTrail(Construct):
    """Exposes ``trail``, its ``bucket`` and the bucket's ``key``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        watched: s3.IBucket,
        access_logs: s3.IBucket,
        retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        trail_name = f"{name_prefix}-audit"
        trail_arn = stack.format_arn(
            service="cloudtrail", resource="trail", resource_name=trail_name
        )
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{name_prefix}/audit-trail",
            description=f"{name_prefix}: CloudTrail log files",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # CloudTrail encrypts each log file with a data key of this trail's only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncrypts",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": stack.format_arn(
                            service="cloudtrail", region="*", resource="trail", resource_name="*"
                        )
                    },
                },
            )
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            **PRIVATE_BUCKET,  # type: ignore[arg-type]
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="retention",
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="audit-trail/",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=trail_name,
            bucket=self.bucket,
            encryption_key=self.key,
            enable_file_validation=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            management_events=cloudtrail.ReadWriteType.ALL,
        )
        self.trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=watched)],
            include_management_events=False,
            read_write_type=cloudtrail.ReadWriteType.ALL,
        )
