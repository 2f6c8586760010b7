"""Fold CDK context overrides into an Environment and check it can be deployed.

The stacks read only the typed Environment; this is the one place where the command line
(``-c mlflow_image_digest=...``, ``-c certificate_arn=...``) can change it, so a stack never
reads context itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mlplatform.config import DIGEST_PATTERN, Environment
from mlplatform.errors import ConfigError
from mlplatform.names import parse_released

__all__ = [
    "CONTEXT_CERTIFICATE_ARN",
    "CONTEXT_IMAGE_DIGEST",
    "CONTEXT_KEYS",
    "CONTEXT_SERVICE_IMAGE_DIGEST",
    "NO_SERVICE_IMAGE",
    "PLACEHOLDER_DIGEST",
    "context_argv",
    "for_looking",
    "from_context",
    "is_placeholder",
    "resolve",
]

CONTEXT_IMAGE_DIGEST = "mlflow_image_digest"
CONTEXT_SERVICE_IMAGE_DIGEST = "mlflow_service_image_digest"
CONTEXT_CERTIFICATE_ARN = "certificate_arn"
# resolve()'s keyword -> the CDK context key it is passed as, in command-line order.
CONTEXT_KEYS = {
    "image_digest": CONTEXT_IMAGE_DIGEST,
    "certificate_arn": CONTEXT_CERTIFICATE_ARN,
    "service_image_digest": CONTEXT_SERVICE_IMAGE_DIGEST,
    # Each source's released image, `name=sha256:…,…` (names.format_released).
    "training_image_digests": "training_image_digests",
    "serving_image_digests": "serving_image_digests",
}
# The service digest of a first deploy: the service exists with no task until the migration ran.
NO_SERVICE_IMAGE = "none"
# `invoke synth` of an environment with no release yet, for looking at its templates: stood in
# for a missing image digest and certificate, said loudly, and never deployed (cdk_cli refuses).
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
_PLACEHOLDER_CERTIFICATE = "certificate/00000000-0000-0000-0000-000000000000"

_DIGEST = re.compile(DIGEST_PATTERN)
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")


def context_argv(**overrides: str | None) -> list[str]:
    """``--context key=value`` for each override given (None and "" are left out)."""
    unknown = set(overrides) - set(CONTEXT_KEYS)
    if unknown:
        raise TypeError(f"unknown CDK context override {sorted(unknown)[0]!r}")
    argv: list[str] = []
    for name, key in CONTEXT_KEYS.items():
        if overrides.get(name):
            argv += ["--context", f"{key}={overrides[name]}"]
    return argv


def from_context(get: Callable[[str], object]) -> dict[str, str | None]:
    """resolve()'s keywords read from a CDK app's context (``app.node.try_get_context``)."""
    values = {name: get(key) for name, key in CONTEXT_KEYS.items()}
    return {name: None if v is None else str(v) for name, v in values.items()}


def for_looking(
    env: Environment, image_digest: str | None, certificate_arn: str | None
) -> tuple[dict[str, str | None], list[str]]:
    """Overrides for a synth that only looks, and a line for each placeholder stood in.

    What is given (or set in environments.toml) is kept; only what is missing is stood in for.
    """
    overrides: dict[str, str | None] = {
        "image_digest": image_digest,
        "certificate_arn": certificate_arn,
    }
    said = []
    if not (image_digest or env.mlflow.image_digest):
        overrides["image_digest"] = PLACEHOLDER_DIGEST
        said.append(f"no MLflow image digest: the placeholder {PLACEHOLDER_DIGEST[:19]}… stands in")
    if not (certificate_arn or env.mlflow.certificate_arn or env.mlflow.allow_http):
        overrides["certificate_arn"] = (
            f"arn:aws:acm:{env.region}:{env.account}:{_PLACEHOLDER_CERTIFICATE}"
        )
        said.append("no certificate: a placeholder ACM ARN stands in")
    return overrides, said


def is_placeholder(name: str, value: str | None) -> bool:
    """Whether an override is one of for_looking's placeholders."""
    if name == "image_digest":
        return value == PLACEHOLDER_DIGEST
    return (
        name == "certificate_arn" and bool(value) and str(value).endswith(_PLACEHOLDER_CERTIFICATE)
    )


def _check_digest(name: str, value: str | None, *also: str) -> None:
    if value is not None and value not in also and not _DIGEST.match(value):
        allowed = " or ".join(["sha256:<64 hex>", *(repr(a) for a in also)])
        raise ConfigError(f"context {CONTEXT_KEYS[name]}: {value!r} is not {allowed}")


def _released(name: str, value: str | None) -> dict[str, str]:
    try:
        return parse_released(value)
    except ValueError as exc:
        raise ConfigError(f"context {CONTEXT_KEYS[name]}: {exc}") from None


def resolve(
    env: Environment,
    *,
    image_digest: str | None = None,
    certificate_arn: str | None = None,
    service_image_digest: str | None = None,
    training_image_digests: str | None = None,
    serving_image_digests: str | None = None,
) -> Environment:
    """Return ``env`` with the given overrides applied; ConfigError if it cannot be deployed.

    An override (from CDK context) wins over environments.toml. There is no placeholder digest:
    a synth without one fails here, so a deploy can never run an image nobody chose; nor an
    HTTPS listener without ``domain_name``, since no certificate covers the ALB's own name.
    The training and serving digests (by source name) record which images the release pushed
    (stack outputs).

        >>> resolve(env, image_digest="sha256:" + "0" * 64).mlflow.image_digest  # doctest: +SKIP
    """
    where = f"[{env.name}.mlflow]"
    _check_digest("image_digest", image_digest)
    _check_digest("service_image_digest", service_image_digest, NO_SERVICE_IMAGE)
    training_images = _released("training_image_digests", training_image_digests)
    serving_images = _released("serving_image_digests", serving_image_digests)
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
    training = env.training.model_copy(update={"training_image_digests": training_images})
    sagemaker = env.sagemaker.model_copy(update={"serving_image_digests": serving_images})
    return env.model_copy(update={"mlflow": mlflow, "training": training, "sagemaker": sagemaker})
