"""Push an OCI image to an ECR repository through ECR's own API (boto3), by digest.

    pushed = push_image(ecr, "mlp-prod-mlflow", image, reporter)   # False: it was there already

The ECR API (BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
CompleteLayerUpload, PutImage) is what `docker push` drives underneath, minus the registry
protocol: so the push needs no engine, no `docker login` (no registry password in a config file
or on a command line) and runs against an emulator through AWS_ENDPOINT_URL like every other AWS
call of the kit. Layers ECR already holds are not sent again; the image is stored by digest
and under an immutable release tag (`release-<digest>`): deploys reference digests, and the
repositories' lifecycle rule expires only the oldest tagged releases beyond a count.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from mlplatform.images.oci_archive import ImageError, OciImage
from mlplatform.reporting import Reporter

__all__ = ["RELEASE_TAG_PREFIX", "image_present", "push_image", "release_tag"]

# The repositories' lifecycle rule counts images with tags of this prefix (infra/stacks).
RELEASE_TAG_PREFIX = "release-"


def release_tag(digest: str) -> str:
    """The immutable tag every pushed image carries: ``release-<first 20 hex digits>``.

    Derived from the digest, so pushing the same bytes again is a no-op.
    """
    return RELEASE_TAG_PREFIX + digest.removeprefix("sha256:")[:20]


def _details(ecr: Any, repository: str, digest: str) -> dict[str, Any] | None:
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    except ecr.exceptions.ImageNotFoundException:
        return None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise ImageError(f"cannot read ECR repository {repository}: {exc}") from exc
    details = found.get("imageDetails") or [{}]
    return dict(details[0])


def image_present(ecr: Any, repository: str, digest: str) -> bool:
    """Whether `repository` holds an image with manifest digest `digest`."""
    return _details(ecr, repository, digest) is not None


def push_image(ecr: Any, repository: str, image: OciImage, reporter: Reporter) -> bool:
    """Upload the blobs ECR lacks, then the manifest under its release tag.

    True if anything changed. An image already there without its release tag (pushed by digest
    only) gets the tag, so the lifecycle rule that counts releases never treats it as untagged.
    """
    tag = release_tag(image.digest)
    details = _details(ecr, repository, image.digest)
    if details is not None and tag in details.get("imageTags", []):
        return False
    try:
        if details is None:
            _upload_missing(ecr, repository, image, reporter)
        ecr.put_image(
            repositoryName=repository,
            imageManifest=image.manifest.decode(),
            imageManifestMediaType=image.media_type,
            imageDigest=image.digest,
            imageTag=tag,
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise ImageError(f"pushing {image.digest[:19]}… to {repository} failed: {exc}") from exc
    if not image_present(ecr, repository, image.digest):
        raise ImageError(f"ECR stored the manifest under another digest than {image.digest}")
    return True


def _upload_missing(ecr: Any, repository: str, image: OciImage, reporter: Reporter) -> None:
    missing = _missing_blobs(ecr, repository, list(image.blobs))
    sent = 0
    for digest in missing:
        reporter.step(f"uploading layer {digest[:19]}… to {repository}")
        sent += _upload_blob(ecr, repository, digest, image.blobs[digest])
    if missing:
        reporter.done(
            f"uploaded {len(missing)} of {len(image.blobs)} blobs ({sent / 2**20:.1f} MiB)"
        )


def _missing_blobs(ecr: Any, repository: str, digests: list[str]) -> list[str]:
    # The API takes at most 100 digests per call.
    present: set[str] = set()
    for start in range(0, len(digests), 100):
        answer = ecr.batch_check_layer_availability(
            repositoryName=repository, layerDigests=digests[start : start + 100]
        )
        present |= {
            layer["layerDigest"]
            for layer in answer.get("layers", [])
            if layer.get("layerAvailability") == "AVAILABLE"
        }
    return [d for d in digests if d not in present]


def _upload_blob(ecr: Any, repository: str, digest: str, path: Any) -> int:
    started = ecr.initiate_layer_upload(repositoryName=repository)
    upload_id, part_size = started["uploadId"], int(started.get("partSize") or 10 * 2**20)
    offset = 0
    with open(path, "rb") as f:
        while part := f.read(part_size):
            ecr.upload_layer_part(
                repositoryName=repository,
                uploadId=upload_id,
                partFirstByte=offset,
                partLastByte=offset + len(part) - 1,
                layerPartBlob=part,
            )
            offset += len(part)
    done = ecr.complete_layer_upload(
        repositoryName=repository, uploadId=upload_id, layerDigests=[digest]
    )
    if done["layerDigest"] != digest:
        raise ImageError(f"ECR computed {done['layerDigest']} for blob {digest}")
    return offset
