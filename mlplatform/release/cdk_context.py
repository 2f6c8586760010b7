"""Fold CDK context overrides into an Environment and check it can be deployed.

The stacks read only the typed Environment; this is the one place where the command line
(``-c mlflow_image_digest=...``, ``-c certificate_arn=...``) can change it, so a stack never
reads context itself.
"""

from __future__ import annotations

import re

from mlplatform.config import DIGEST_PATTERN, Environment
from mlplatform.errors import ConfigError

__all__ = [
    "CONTEXT_CERTIFICATE_ARN",
    "CONTEXT_IMAGE_DIGEST",
    "CONTEXT_SERVICE_IMAGE_DIGEST",
    "NO_SERVICE_IMAGE",
    "resolve",
]

CONTEXT_IMAGE_DIGEST = "mlflow_image_digest"
CONTEXT_SERVICE_IMAGE_DIGEST = "mlflow_service_image_digest"
CONTEXT_CERTIFICATE_ARN = "certificate_arn"
# The service digest of a first deploy: the service exists with no task until the migration ran.
NO_SERVICE_IMAGE = "none"

_DIGEST = re.compile(DIGEST_PATTERN)
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")


def resolve(
    env: Environment,
    *,
    image_digest: str | None = None,
    certificate_arn: str | None = None,
    service_image_digest: str | None = None,
) -> Environment:
    """Return ``env`` with the given overrides applied; ConfigError if it cannot be deployed.

    An override (from CDK context) wins over environments.toml. There is no placeholder digest:
    a synth without one fails here, so a deploy can never run an image nobody chose; nor an
    HTTPS listener without ``domain_name``, since no certificate covers the ALB's own name.

        >>> resolve(env, image_digest="sha256:" + "0" * 64).mlflow.image_digest  # doctest: +SKIP
    """
    where = f"[{env.name}.mlflow]"
    if image_digest is not None and not _DIGEST.match(image_digest):
        raise ConfigError(
            f"context {CONTEXT_IMAGE_DIGEST}: {image_digest!r} is not sha256:<64 hex>"
        )
    if service_image_digest is not None and not (
        service_image_digest == NO_SERVICE_IMAGE or _DIGEST.match(service_image_digest)
    ):
        raise ConfigError(
            f"context {CONTEXT_SERVICE_IMAGE_DIGEST}: {service_image_digest!r} is not "
            f"sha256:<64 hex> or {NO_SERVICE_IMAGE!r}"
        )
    if certificate_arn is not None and not _ACM_ARN.match(certificate_arn):
        raise ConfigError(
            f"context {CONTEXT_CERTIFICATE_ARN}: {certificate_arn!r} is not an ACM ARN"
        )
    mlflow = env.mlflow.model_copy(
        update={
            "image_digest": image_digest or env.mlflow.image_digest,
            "certificate_arn": certificate_arn or env.mlflow.certificate_arn,
            "service_image_digest": service_image_digest or env.mlflow.service_image_digest,
        }
    )
    if mlflow.image_digest is None:
        raise ConfigError(
            f"{where} image_digest is not set: push the MLflow image and set it, or pass "
            f"-c {CONTEXT_IMAGE_DIGEST}=sha256:<digest>"
        )
    if mlflow.certificate_arn is None and not mlflow.allow_http:
        raise ConfigError(
            f"{where} certificate_arn is not set: give an ACM certificate ARN (or pass -c "
            f"{CONTEXT_CERTIFICATE_ARN}=arn:...), or set allow_http = true for a sandbox"
        )
    # environments.toml already refuses a certificate without a name; a certificate handed in as
    # context (`invoke deploy --certificate-arn`) bypasses that check, so it is repeated here.
    if mlflow.certificate_arn is not None and mlflow.domain_name is None:
        raise ConfigError(
            f"{where} domain_name is not set: the certificate {mlflow.certificate_arn} covers a "
            f"name, and clients must reach MLflow by it; set domain_name in {where}"
        )
    return env.model_copy(update={"mlflow": mlflow})
