"""The MLflow image's RDS CA bundle is exactly what the locked npm package holds.

Marked integration: it runs `npm ci` when node_modules is missing, which must not race the
deploy tests' own (they share one xdist worker, tests/conftest.py).
"""

from __future__ import annotations

import ssl

import pytest

from mlplatform.toolchain.rds_ca import RDS_CA_BUNDLE, bundle_from_package

pytestmark = pytest.mark.integration


def test_committed_bundle_is_the_locked_packages() -> None:
    """A changed lock without `invoke lock` (or a hand-edited bundle) fails here."""
    assert RDS_CA_BUNDLE.read_text(encoding="utf-8") == bundle_from_package()


def test_bundle_holds_rds_regional_cas_that_openssl_loads() -> None:
    context = ssl.create_default_context(cafile=str(RDS_CA_BUNDLE))
    subjects = [dict(item[0] for item in cert["subject"]) for cert in context.get_ca_certs()]
    names = {s.get("commonName", "") for s in subjects}
    # The CAs RDS issues instance certificates from today (rds-ca-rsa2048-g1, the default).
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in names
    assert "Amazon RDS eu-west-1 Root CA RSA2048 G1" in names
    assert len(names) > 60
