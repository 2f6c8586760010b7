"""Reading OCI images and pushing them to ECR through its API (moto's ECR, in process).

moto's ECR keeps layer uploads, checks part order and computes layer digests from the bytes, like
ECR; it is not a registry, so pulling the pushed image (what Fargate does) is not shown here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlplatform.images.oci_archive import ImageError, open_image
from mlplatform.release.ecr_push import image_present, push_image, release_tag
from mlplatform.reporting import SilentReporter
from tests.oci_images import write_archive, write_layout

REPO = "mlp-prod-mlflow"
BASE = {"usr/lib/base.txt": b"base layer\n"}
APP = {"app/server.py": b"print('serve')\n"}


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    with mock_aws():
        client = boto3.client("ecr", region_name="eu-west-1")
        client.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE")
        calls: list[str] = []
        client.meta.events.register(
            "before-call.ecr.*", lambda model, **_: calls.append(model.name)
        )
        client.calls = calls  # type: ignore[attr-defined]
        yield client


def test_digest_is_the_sha256_of_the_manifest_for_layouts_and_archives(tmp_path: Path) -> None:
    layout_digest = write_layout(tmp_path / "layout", BASE, APP)
    archive_digest = write_archive(tmp_path / "image.tar", BASE, APP)
    with open_image(tmp_path / "layout") as image:
        assert image.digest == layout_digest
        assert image.digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
        assert len(image.blobs) == 3  # config + two layers
    with open_image(tmp_path / "image.tar") as image:
        assert image.digest == archive_digest == layout_digest


def test_an_altered_blob_is_refused_before_anything_is_pushed(tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", APP)
    manifest_digest = json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"][0][
        "digest"
    ]
    manifest = json.loads(
        (tmp_path / "layout" / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text()
    )
    layer = tmp_path / "layout" / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    layer.write_bytes(layer.read_bytes() + b"tampered")
    with (
        pytest.raises(ImageError, match=r"does not match its digest; not pushed"),
        open_image(tmp_path / "layout"),
    ):
        pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("not a tar"), "not a readable image archive"),
        (lambda p: None, "no such image archive or OCI layout directory"),
        (lambda p: tarfile.open(p, "w").close(), "not an OCI image layout"),
    ],
)
def test_what_is_not_an_image_is_one_clear_error(tmp_path: Path, make, message) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "image.tar"
    make(path)
    with pytest.raises(ImageError, match=message) as caught, open_image(path):
        pass
    assert "\n" not in str(caught.value)


def test_an_image_for_another_platform_is_refused(tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", APP, architecture="arm64")
    with (
        pytest.raises(ImageError, match=r"the image is for linux/arm64; the Fargate tasks run"),
        open_image(tmp_path / "layout"),
    ):
        pass


def test_plain_tar_layers_as_docker_saves_them_are_pushed_gzipped(ecr, tmp_path: Path) -> None:
    saved = write_archive(tmp_path / "image.tar", BASE, APP, compress=False)
    with open_image(tmp_path / "image.tar") as image:
        assert image.digest != saved  # the manifest names the gzip layers now
        assert push_image(ecr, REPO, image, SilentReporter()) is True
        manifest = json.loads(image.manifest)
        config = json.loads(image.blobs[manifest["config"]["digest"]].read_bytes())
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
            packed = image.blobs[layer["digest"]].read_bytes()
            assert layer["size"] == len(packed)
            # The config's diff_ids name the uncompressed content, which is unchanged.
            assert "sha256:" + hashlib.sha256(gzip.decompress(packed)).hexdigest() == diff_id
        pushed = image.digest
    assert image_present(ecr, REPO, pushed)
    with open_image(tmp_path / "image.tar") as again:
        assert again.digest == pushed  # reproducible: the same archive, the same digest


def test_an_index_is_followed_to_its_linux_amd64_image(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    amd64 = write_layout(layout, APP)
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    arm = {**descriptor, "digest": "sha256:" + "0" * 64}
    nested = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**arm, "platform": {"os": "linux", "architecture": "arm64"}},
            {**descriptor, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    data = json.dumps(nested).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    index["manifests"] = [
        {"mediaType": nested["mediaType"], "digest": f"sha256:{digest}", "size": len(data)}
    ]
    (layout / "index.json").write_text(json.dumps(index))
    with open_image(layout) as image:
        assert image.digest == amd64


def test_push_stores_the_image_under_its_local_digest_and_is_idempotent(
    ecr, tmp_path: Path
) -> None:
    digest = write_layout(tmp_path / "layout", BASE, APP)
    with open_image(tmp_path / "layout") as image:
        assert image_present(ecr, REPO, digest) is False
        assert push_image(ecr, REPO, image, SilentReporter()) is True
        (described,) = ecr.describe_images(repositoryName=REPO)["imageDetails"]
        assert described["imageDigest"] == digest
        # An immutable release tag: the lifecycle rule counts tagged releases and never
        # expires an image for being untagged (issue 10: ECR deleted running images).
        assert described["imageTags"] == [release_tag(digest)]
        assert release_tag(digest) == "release-" + digest[7:27]
        (stored,) = ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageDigest": digest}])[
            "images"
        ]
        assert stored["imageManifest"].encode() == image.manifest

        ecr.calls.clear()
        assert push_image(ecr, REPO, image, SilentReporter()) is False
        assert "UploadLayerPart" not in ecr.calls and "PutImage" not in ecr.calls


def test_an_image_pushed_by_digest_only_gets_its_release_tag(ecr, tmp_path: Path) -> None:
    digest = write_layout(tmp_path / "layout", APP)
    with open_image(tmp_path / "layout") as image:
        push_image(ecr, REPO, image, SilentReporter())
        # As an older kit pushed it: the same image without a tag.
        ecr.batch_delete_image(repositoryName=REPO, imageIds=[{"imageTag": release_tag(digest)}])
        ecr.put_image(
            repositoryName=REPO,
            imageManifest=image.manifest.decode(),
            imageManifestMediaType=image.media_type,
            imageDigest=digest,
        )
        ecr.calls.clear()
        assert push_image(ecr, REPO, image, SilentReporter()) is True
    assert "UploadLayerPart" not in ecr.calls
    (described,) = ecr.describe_images(repositoryName=REPO)["imageDetails"]
    assert described["imageTags"] == [release_tag(digest)]


def test_layers_the_repository_holds_are_not_sent_again(ecr, tmp_path: Path) -> None:
    write_layout(tmp_path / "v1", BASE, {"app/server.py": b"v1"})
    write_layout(tmp_path / "v2", BASE, {"app/server.py": b"v2"})
    with open_image(tmp_path / "v1") as first:
        push_image(ecr, REPO, first, SilentReporter())
    ecr.calls.clear()
    with open_image(tmp_path / "v2") as second:
        assert push_image(ecr, REPO, second, SilentReporter()) is True
    # The shared base layer stays; the new config and the new app layer are sent.
    assert ecr.calls.count("CompleteLayerUpload") == 2
    assert len(ecr.describe_images(repositoryName=REPO)["imageDetails"]) == 2


def test_a_layer_larger_than_one_part_is_sent_in_order(ecr, tmp_path: Path) -> None:
    big = os.urandom(11 * 2**20)  # ECR's (and moto's) part size is 10 MiB
    digest = write_layout(tmp_path / "layout", {"data/blob.bin": big})
    with open_image(tmp_path / "layout") as image:
        push_image(ecr, REPO, image, SilentReporter())
    assert ecr.calls.count("UploadLayerPart") >= 3  # config, then the layer in two parts
    assert image_present(ecr, REPO, digest)


def test_a_missing_repository_is_one_clear_error(ecr, tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", APP)
    with (
        open_image(tmp_path / "layout") as image,
        pytest.raises(ImageError, match=r"cannot read ECR repository nope: .*RepositoryNotFound"),
    ):
        push_image(ecr, "nope", image, SilentReporter())
