"""A bucket that receives S3 server access logs or ALB access logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

__all__ = ["PRIVATE_BUCKET", "LogBucket"]

# What every bucket of the kit is: SSL only, never public, owner-owned objects, versioned.
PRIVATE_BUCKET: dict[str, object] = {
    "enforce_ssl": True,
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    "versioned": True,
}


class LogBucket(Construct):
    """Private, SSL-only, versioned log bucket whose objects expire after ``expire_days``.

    Encryption is SSE-S3 because neither S3 server access logging nor ALB access logging can
    write to a bucket that uses a customer-managed KMS key.
    """

    def __init__(self, scope: Construct, construct_id: str, *, expire_days: int = 365) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            **PRIVATE_BUCKET,  # type: ignore[arg-type]
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(expire_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            # Logs are evidence: a stack deletion must not take them along.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            f"{construct_id} is itself an access-log destination; logging it into another bucket "
            "would only move the same finding one bucket further.",
        )
