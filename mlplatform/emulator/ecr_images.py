"""moto gap: ECR keeps a pushed layer's size, not its bytes; here an image's config can be read.

    labels = image_labels(account, region, f"{registry}/mlp-prod/serving@sha256:…")

moto 5.2's CompleteLayerUpload records the digest and size of each uploaded blob and drops the
bytes, so nothing in the account can tell what a pushed image holds. In the kit's AWS server
the small blobs (up to 1 MiB: image configs, never the layers, which would cost the emulator
their size in memory) are kept beside moto's record, so the emulator can read a pushed image's
config, as a SageMaker host reads it when it starts the image: its labels say which training
source and lock it holds (mlplatform.names SOURCE_LABEL, LOCK_LABEL).

What it cannot show: the layers themselves (nothing here runs the pushed bytes; the container
lane runs the built image), and ECR's own layer garbage collection.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.ecr.models import ECRBackend, ecr_backends

from mlplatform.names import parse_ecr_image

__all__ = ["KEPT_BLOB_BYTES", "image_labels", "install"]

# Configs are a few KiB; layers are megabytes and are never read here.
KEPT_BLOB_BYTES = 2**20
_LOCK = threading.Lock()
# (account, region, repository, digest) -> bytes of a small blob the account received.
_BLOBS: dict[tuple[str, str, str, str], bytes] = {}
_ORIGINAL = ECRBackend.complete_layer_upload


def _complete_layer_upload(
    self: ECRBackend,
    repository_name: str,
    upload_id: str,
    layer_digests: list[str],
    registry_id: str | None = None,
) -> dict[str, Any]:
    repository = self._get_repository(repository_name, registry_id)
    upload = repository.uploads.get(upload_id)
    held = bytes(upload.layer_parts) if upload is not None else b""
    done: dict[str, Any] = _ORIGINAL(self, repository_name, upload_id, layer_digests, registry_id)
    if len(held) <= KEPT_BLOB_BYTES:
        key = (self.account_id, self.region_name, repository_name, done["layerDigest"])
        with _LOCK:
            _BLOBS[key] = held
    return done


def image_labels(account: str, region: str, image: str) -> dict[str, str] | None:
    """The labels of the pushed image `image` (an ECR URI by digest) names, or None.

    None when the URI is not this account's ECR by digest, or the image, its manifest or its
    config is not here (pushed before the emulator kept configs, or never pushed).
    """
    parsed = parse_ecr_image(image)
    # SageMaker pulls from its own region's ECR only.
    if parsed is None or (parsed.account, parsed.region) != (account, region) or not parsed.digest:
        return None
    backend = ecr_backends[account][parsed.region]
    repository = backend.repositories.get(parsed.repository)
    if repository is None:
        return None
    found = [i for i in repository.images if i.image_digest == parsed.digest]
    if not found:
        return None
    try:
        config = json.loads(found[0].image_manifest)["config"]["digest"]
    except (ValueError, KeyError, TypeError):
        return None
    with _LOCK:
        blob = _BLOBS.get((account, parsed.region, parsed.repository, config))
    if blob is None:
        return None
    try:
        labels = json.loads(blob).get("config", {}).get("Labels") or {}
    except (ValueError, AttributeError):
        return None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else None


def install() -> None:
    """From now on, this process's moto keeps the small blobs pushed to ECR."""
    ECRBackend.complete_layer_upload = _complete_layer_upload  # type: ignore[method-assign]
