"""Finding the ACM certificate of an environment's MLflow domain (moto's ACM, in-process)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws, settings

from mlplatform.cloud.certificates import certificate_arn, issued_certificate
from mlplatform.config import load_environment
from mlplatform.errors import DeployError

DOMAIN = "mlflow.prod.internal"


@pytest.fixture
def acm(monkeypatch: pytest.MonkeyPatch) -> Any:
    # moto issues a DNS-validated certificate after this many seconds; AWS after the DNS check.
    monkeypatch.setattr(settings, "ACM_VALIDATION_WAIT", 0)
    with mock_aws():
        yield boto3.client("acm", region_name="eu-west-1")


def request(acm: Any, domain: str, *alternatives: str) -> str:
    extra = {"SubjectAlternativeNames": [domain, *alternatives]} if alternatives else {}
    arn = acm.request_certificate(DomainName=domain, ValidationMethod="DNS", **extra)
    acm.describe_certificate(CertificateArn=arn["CertificateArn"])  # moto issues it when read
    return str(arn["CertificateArn"])


def test_an_issued_certificate_for_the_domain_is_found_and_no_other(acm: Any) -> None:
    request(acm, "other.prod.internal")
    assert issued_certificate(acm, DOMAIN) is None
    arn = request(acm, DOMAIN)
    assert issued_certificate(acm, DOMAIN) == arn


def test_a_wildcard_covers_one_label_and_an_alternative_name_counts(acm: Any) -> None:
    wildcard = request(acm, "*.prod.internal")
    assert issued_certificate(acm, DOMAIN) == wildcard
    assert issued_certificate(acm, "a.mlflow.prod.internal") is None
    alternative = request(acm, "registry.example.com", "models.example.com")
    assert issued_certificate(acm, "models.example.com") == alternative


def test_a_pending_certificate_is_not_used(acm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "ACM_VALIDATION_WAIT", 3600)
    acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")
    assert issued_certificate(acm, DOMAIN) is None


def test_a_named_or_configured_certificate_wins_and_acm_is_not_asked() -> None:
    prod = load_environment("prod")
    named = "arn:aws:acm:eu-west-1:222222222222:certificate/named"

    def no_acm() -> Any:
        raise AssertionError("ACM was asked")

    assert certificate_arn(prod, no_acm, named) == named
    configured = prod.model_copy(
        update={"mlflow": prod.mlflow.model_copy(update={"certificate_arn": named + "-toml"})}
    )
    assert certificate_arn(configured, no_acm, None) is None  # resolve() takes the toml's


def test_without_one_the_deploy_stops_with_one_line(acm: Any) -> None:
    prod = load_environment("prod")
    with pytest.raises(DeployError) as caught:
        certificate_arn(prod, lambda: acm, None, DeployError)
    assert str(caught.value) == (
        "no issued ACM certificate for mlflow.prod.internal in eu-west-1: request one (and "
        "validate it), or pass --certificate-arn"
    )
    arn = request(acm, DOMAIN)
    assert certificate_arn(prod, lambda: acm, None, DeployError) == arn
