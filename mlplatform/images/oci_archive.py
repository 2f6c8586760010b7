"""Read a container image as an OCI image layout: the bytes a registry stores, with their digests.

    with open_image(Path("mlflow.oci.tar")) as image:     # archive or layout directory
        image.digest                                      # sha256 of the manifest: the image's id
    with open_image(export_from_engine("mlplatform/mlflow-server:local", tmp)) as image: ...

An image's registry digest is the sha256 of its manifest bytes, so it is known here, before any
push, and a deploy can reference exactly the image that was tested. Plain tar layers (what
`docker save` writes) are gzipped first, reproducibly, as `docker push` would send them; the
digest is then the one of the image as pushed. Every blob is checked against
its digest when the image is opened, so a truncated or altered archive fails before anything is
pushed. `podman save --format oci-archive` and `docker save` (Docker 25 and later) write OCI
layouts; an image index is followed to its linux/amd64 manifest, and an image for another
platform is refused (the task definitions ask Fargate for X86_64 Linux).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform.errors import EngineMissingError, ImageError
from mlplatform.images.engine import Engine, find_engine
from mlplatform.registry.archive import file_sha256

__all__ = ["ImageError", "OciImage", "export_from_engine", "open_image", "save_archive"]

_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_PLATFORM = {"os": "linux", "architecture": "amd64"}
# Plain tar layer media types and their gzip counterparts (OCI and Docker's).
_PLAIN_LAYERS = {
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": (
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    ),
}


@dataclass(frozen=True)
class OciImage:
    """One image manifest and the blobs (config and layers) it names."""

    manifest: bytes
    media_type: str
    blobs: dict[str, Path]  # digest -> file, config first, then the layers in order

    @property
    def digest(self) -> str:
        """The registry digest: sha256 of the manifest bytes."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def size(self) -> int:
        """Bytes of all blobs (what a push may have to send)."""
        return sum(path.stat().st_size for path in self.blobs.values())


@contextmanager
def open_image(source: Path) -> Iterator[OciImage]:
    """The image in an OCI layout directory or archive (tar); ImageError if it is not one."""
    if not source.exists():
        raise ImageError(f"{source}: no such image archive or OCI layout directory")
    with tempfile.TemporaryDirectory(prefix="mlp-image-") as tmp:
        work = Path(tmp)
        root = source
        if not source.is_dir():
            root = work / "layout"
            try:
                with tarfile.open(source) as archive:
                    archive.extractall(root, filter="data")
            except (tarfile.TarError, OSError) as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":")
                raise ImageError(f"{source}: not a readable image archive ({first})") from exc
        yield _compress_layers(_read_layout(root, source), work / "gzip")


def export_from_engine(reference: str, directory: Path) -> Path:
    """Save a local engine image as an OCI archive in `directory`; return the archive's path.

    The engine is the one that answers (engine.find_engine: MLP_ENGINE, else Podman, else Docker).
    """
    try:
        engine = find_engine()
    except EngineMissingError as exc:
        raise ImageError(
            f"{reference!r} is not a file and no container engine answers to export it; "
            "pass an OCI archive (invoke build writes them) or --image-digest"
        ) from exc
    archive = directory / "image.oci.tar"
    save_archive(engine, reference, archive)
    return archive


def save_archive(engine: Engine, reference: str, archive: Path) -> None:
    """Write the engine's image `reference` to `archive` as an OCI archive; ImageError if not."""
    # Podman writes its own format unless told; Docker 25 and later writes an OCI layout.
    extra = ["--format", "oci-archive"] if engine.kind == "podman" else []
    done = engine.run(["save", *extra, "-o", str(archive), reference], timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ImageError(f"{engine.kind} could not export {reference!r}: {last}")


def _read_layout(root: Path, source: Path) -> OciImage:
    try:
        index = json.loads((root / "index.json").read_text())
        descriptor = _pick(index.get("manifests") or [], source)
        while descriptor.get("mediaType") in _INDEX_TYPES:
            nested = json.loads(_blob(root, descriptor["digest"], source).read_bytes())
            descriptor = _pick(nested.get("manifests") or [], source)
        manifest_path = _blob(root, descriptor["digest"], source)
        manifest = manifest_path.read_bytes()
        parsed = json.loads(manifest)
        media_type = parsed.get("mediaType") or descriptor.get("mediaType")
        blobs = {
            d["digest"]: _blob(root, d["digest"], source)
            for d in [parsed["config"], *parsed.get("layers", [])]
        }
        config = json.loads(blobs[parsed["config"]["digest"]].read_bytes())
        platform = f"{config.get('os')}/{config.get('architecture')}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageError(f"{source}: not an OCI image layout ({exc})") from exc
    if not media_type:
        raise ImageError(f"{source}: the manifest names no media type")
    if platform != "{os}/{architecture}".format(**_PLATFORM):
        raise ImageError(
            f"{source}: the image is for {platform}; the Fargate tasks run linux/amd64"
        )
    return OciImage(manifest, media_type, blobs)


def _compress_layers(image: OciImage, directory: Path) -> OciImage:
    """The image with gzip layers where the archive has plain tar ones, as `docker push` sends.

    `docker save` (Docker 25 and later) stores layers uncompressed; Podman 4.3's oci-archive
    has gzip layers already. Registries, and the pulls Fargate makes, are built around gzip
    layers. The manifest changes with the layers, so the digest is the one of the image as
    pushed; gzip without a timestamp keeps it reproducible.
    """
    manifest = json.loads(image.manifest)
    layers = manifest.get("layers", [])
    if not any(layer.get("mediaType") in _PLAIN_LAYERS for layer in layers):
        return image
    directory.mkdir(exist_ok=True)
    blobs = {manifest["config"]["digest"]: image.blobs[manifest["config"]["digest"]]}
    for n, layer in enumerate(layers):
        plain = image.blobs[layer["digest"]]
        if layer.get("mediaType") in _PLAIN_LAYERS:
            packed = directory / str(n)
            with (
                plain.open("rb") as raw,
                packed.open("wb") as out,
                gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz,
            ):
                shutil.copyfileobj(raw, gz, 1 << 20)
            layer.update(
                mediaType=_PLAIN_LAYERS[layer["mediaType"]],
                digest="sha256:" + file_sha256(packed),
                size=packed.stat().st_size,
            )
            plain = packed
        blobs[layer["digest"]] = plain
    return OciImage(json.dumps(manifest).encode(), image.media_type, blobs)


def _pick(descriptors: list[dict[str, Any]], source: Path) -> dict[str, Any]:
    if len(descriptors) == 1:
        return descriptors[0]
    for descriptor in descriptors:
        platform = descriptor.get("platform") or {}
        if all(platform.get(k) == v for k, v in _PLATFORM.items()):
            return descriptor
    raise ImageError(
        f"{source}: {len(descriptors)} images and none for linux/amd64; export exactly one"
    )


def _blob(root: Path, digest: str, source: Path) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    path = root / "blobs" / algorithm / hexdigest
    if algorithm != "sha256" or not path.is_file():
        raise ImageError(f"{source}: blob {digest} is missing")
    if file_sha256(path) != hexdigest:
        raise ImageError(f"{source}: blob {digest[:19]}… does not match its digest; not pushed")
    return path
