"""Names built in a stack's scope (CDK tokens); every other name is in mlplatform.names."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from mlplatform.config import Environment

__all__ = ["object_arn"]


def object_arn(scope: IConstruct, env: Environment, key_pattern: str) -> str:
    """ARN of objects under ``key_pattern`` in the artifact bucket, e.g. ``datasets/*``.

    Built from the bucket's configured name (which the data stack sets, asserted in the tests)
    rather than from a cross-stack token, so the ARN in a template and in a cdk-nag finding reads
    as the real bucket and prefix.
    """
    return cdk.Arn.format(
        cdk.ArnComponents(
            service="s3", region="", account="", resource=env.bucket_name, resource_name=key_pattern
        ),
        cdk.Stack.of(scope),
    )
