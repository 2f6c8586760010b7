"""`invoke build`: the three images AWS runs, built here from the hash-locked requirements.

    mlflow    mlflow_server/Dockerfile   the tracking server ECS runs
    training  training/Dockerfile        the SageMaker training job's image
    serving   scoring_server/Dockerfile  the SageMaker endpoint's image

Each is built on the base image (base.py) and saved as an OCI archive under the state folder's
images/, and its digest is the registry digest of that archive as the kit pushes it
(oci_archive.py): what `invoke deploy` sends to ECR is those bytes.

Builds are reproducible: the same inputs (base image, Dockerfile, the files it copies) give the
same digest. The engine stamps every file and the image's creation time with
SOURCE_DATE_EPOCH (Podman: --timestamp; Docker BuildKit: rewrite-timestamp) and the
Dockerfiles pass SOURCE_DATE_EPOCH to pip, so byte-compiled files are hash-checked instead of
stamped with the build's time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ImageError
from mlplatform.images.base import ensure_base_image
from mlplatform.images.engine import Engine
from mlplatform.images.oci_archive import open_image, save_archive
from mlplatform.paths import StatePaths
from mlplatform.reporting import Reporter

__all__ = [
    "SOURCE_DATE_EPOCH",
    "SPECS",
    "BuiltImage",
    "ImageSpec",
    "build_images",
    "built_archive",
    "select",
    "sidecar",
]

# Any fixed time gives reproducible builds; 0 says plainly that it is not a build date.
SOURCE_DATE_EPOCH = 0


@dataclass(frozen=True)
class ImageSpec:
    """One of the kit's images: its Dockerfile (relative to the repository) and local tag."""

    name: str
    dockerfile: str
    tag: str


SPECS = {
    spec.name: spec
    for spec in (
        # The tag compose/standins/build.sh gives it, so the compose runtime runs this build.
        ImageSpec("mlflow", "mlflow_server/Dockerfile", "mlplatform/mlflow-server:local"),
        ImageSpec("training", "training/Dockerfile", "mlplatform/training:local"),
        ImageSpec("serving", "scoring_server/Dockerfile", "mlplatform/serving:local"),
    )
}


@dataclass(frozen=True)
class BuiltImage:
    """A built image: its local tag, registry digest and the OCI archive holding its bytes."""

    name: str
    tag: str
    digest: str
    archive: Path

    def as_json(self) -> dict[str, str]:
        """The fields `invoke build --json` prints."""
        return {"tag": self.tag, "digest": self.digest, "archive": str(self.archive)}


def select(names: Sequence[str]) -> list[ImageSpec]:
    """The specs of `names` (all three when empty); ImageError naming the choices otherwise."""
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        raise ImageError(f"unknown image {unknown[0]!r}; choose from {', '.join(SPECS)}")
    return [SPECS[n] for n in (names or SPECS)]


def _build_args(engine: Engine, spec: ImageSpec, base: str, no_cache: bool) -> list[str]:
    args = [
        "build",
        "--file",
        spec.dockerfile,
        "--tag",
        spec.tag,
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
    ]
    if engine.kind == "podman":
        # Docker's manifest format keeps HEALTHCHECK (the MLflow image's), which OCI's drops.
        # Buildah's history names each step's intermediate image by an id that differs from
        # build to build although every layer is the same: the history is left out.
        args += ["--format", "docker", "--timestamp", str(SOURCE_DATE_EPOCH), "--omit-history"]
    else:
        args += ["--output", "type=docker,rewrite-timestamp=true"]
    if no_cache:
        args.append("--no-cache")
    return [*args, str(REPO_ROOT)]


def built_archive(paths: StatePaths, name: str) -> Path:
    """Where `invoke build` saves one image's OCI archive (`invoke deploy` pushes it from there)."""
    return paths.root / "images" / f"{name}.oci.tar"


def build_images(
    specs: Sequence[ImageSpec],
    engine: Engine,
    paths: StatePaths,
    reporter: Reporter,
    no_cache: bool = False,
) -> list[BuiltImage]:
    """Build each image on the base image, save it under the state folder, read its digest.

    An archive is saved again only when the engine's image changed (its id differs from the one
    the archive was saved from) or with `no_cache`: a rebuild from the layer cache of unchanged
    inputs takes seconds, saving a gigabyte does not.
    """
    base = ensure_base_image(engine, paths, reporter)
    built = []
    for spec in specs:
        log = paths.logs / "images" / f"{spec.name}.log"
        reporter.step(f"building {spec.name} ({spec.dockerfile} on {base}; log: {log})")
        done = engine.run(_build_args(engine, spec, base, no_cache), timeout=3600, log=log)
        if done.returncode != 0:
            raise ImageError(f"building the {spec.name} image failed; see {log}")
        archive = built_archive(paths, spec.name)
        image_id = _image_id(engine, spec.tag)
        saved = None if no_cache else _saved(archive)
        if saved is not None and saved["image_id"] == image_id:
            digest = saved["digest"]
            reporter.done(f"{spec.name} {digest} (unchanged; archive kept)")
        else:
            digest = _save(engine, spec, archive, image_id)
            reporter.done(f"{spec.name} {digest}")
        built.append(BuiltImage(spec.name, spec.tag, digest, archive))
    return built


def _image_id(engine: Engine, tag: str) -> str:
    # JSON, which Docker and Podman agree on (their --format templates differ).
    done = engine.run(["image", "inspect", tag], timeout=120)
    try:
        return str(json.loads(done.stdout)[0]["Id"])
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ImageError(f"the engine does not show the image it built ({tag})") from exc


def sidecar(archive: Path) -> Path:
    """The small file beside an archive: its digest and the engine image it was saved from."""
    return archive.with_name(archive.name + ".json")


def _saved(archive: Path) -> dict[str, str] | None:
    """What the sidecar says, when it describes the archive now there (not an older one)."""
    side = sidecar(archive)
    if not (archive.is_file() and side.is_file()):
        return None
    if side.stat().st_mtime < archive.stat().st_mtime:
        return None
    try:
        loaded = json.loads(side.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) and {"digest", "image_id"} <= set(loaded) else None


def _save(engine: Engine, spec: ImageSpec, archive: Path, image_id: str) -> str:
    archive.parent.mkdir(parents=True, exist_ok=True)
    # Saved under a name of this process's own, then renamed: an interrupted save never leaves
    # half an archive under the real name, and two builds never share a file.
    partial = archive.parent / f".{spec.name}.{os.getpid()}.partial"
    try:
        save_archive(engine, spec.tag, partial)
        with open_image(partial) as image:
            digest = image.digest
        partial.replace(archive)
        # After the archive, so a sidecar never describes an archive saved later than itself.
        sidecar(archive).write_text(
            json.dumps({"digest": digest, "image_id": image_id}) + "\n", encoding="utf-8"
        )
    finally:
        partial.unlink(missing_ok=True)
    return digest
