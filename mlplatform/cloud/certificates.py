"""The ACM certificate of an environment's MLflow domain, found by name.

`invoke deploy` takes `--certificate-arn`, else [E.mlflow] certificate_arn, else the issued
certificate this finds for [E.mlflow] domain_name: the same lookup in AWS and in the emulated
account, made with the deploying user's credentials (acm:ListCertificates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions

from mlplatform.config import Environment
from mlplatform.errors import PlatformError

__all__ = ["certificate_arn", "issued_certificate"]


def certificate_arn(
    env: Environment,
    acm: Callable[[], Any],
    named: str | None,
    error: type[PlatformError] = PlatformError,
) -> str | None:
    """The certificate a deploy of `env` uses: `named`, else the configured one, else ACM's.

    None when the configuration needs none (allow_http, or no domain name: resolve() refuses
    what it cannot deploy). `acm` makes the client only when ACM must be asked.
    """
    mlflow = env.mlflow
    if named or mlflow.certificate_arn or mlflow.allow_http or mlflow.domain_name is None:
        return named
    found = issued_certificate(acm(), mlflow.domain_name)
    if found is None:
        raise error(
            f"no issued ACM certificate for {mlflow.domain_name} in {env.region}: request one "
            f"(and validate it), or pass --certificate-arn"
        )
    return found


def issued_certificate(acm: Any, domain: str) -> str | None:
    """The ARN of an ISSUED certificate whose name or alternative names cover `domain`.

    When several do (a renewal imported beside the old one), the one that expires last wins.
    """
    # A wildcard covers one label: *.prod.internal covers mlflow.prod.internal.
    wanted = {domain, "*." + domain.split(".", 1)[-1]}
    found: list[tuple[str, str]] = []
    try:
        pages = acm.get_paginator("list_certificates").paginate(CertificateStatuses=["ISSUED"])
        for page in pages:
            for cert in page["CertificateSummaryList"]:
                if wanted & _names(acm, cert):
                    found.append((str(cert.get("NotAfter", "")), cert["CertificateArn"]))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise PlatformError(f"cannot list ACM certificates for {domain}: {exc}") from exc
    return max(found)[1] if found else None


def _names(acm: Any, summary: dict[str, Any]) -> set[str]:
    """The names a listed certificate covers: its summary's, else the full description's.

    A summary lists at most 100 alternative names (and moto's lists none): beyond those,
    DescribeCertificate has them all.
    """
    names = {summary.get("DomainName", ""), *summary.get("SubjectAlternativeNameSummaries", [])}
    if "SubjectAlternativeNameSummaries" in summary and not summary.get(
        "HasAdditionalSubjectAlternativeNames"
    ):
        return names
    described = acm.describe_certificate(CertificateArn=summary["CertificateArn"])["Certificate"]
    return names | set(described.get("SubjectAlternativeNames", []))
