"""`invoke build`: the images AWS runs, built here from the hash-locked requirements.

    mlflow            mlflow_server/Dockerfile   the tracking server ECS runs
    training-<name>   training/Dockerfile        a source's SageMaker training image
    serving-<name>    scoring_server/Dockerfile  a source's SageMaker endpoint image (its lock)

The training and serving images are built once per training source (<name>: the source's name),
so each model is trained and served in its own source's lock. The source reaches the build as a
build context of its own (`--build-context source=DIR`), staged from exactly the files the
source's sha256 covers (no caches, no local environments), so any folder can be built, inside
the repository or not.

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

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ImageError
from mlplatform.images.base import ensure_base_image
from mlplatform.images.engine import Engine
from mlplatform.images.oci_archive import open_image, save_archive
from mlplatform.names import IMAGES, SOURCE_IMAGES
from mlplatform.paths import StatePaths
from mlplatform.reporting import Reporter

__all__ = [
    "DOCKERFILES",
    "SOURCE_DATE_EPOCH",
    "BuildSource",
    "BuiltImage",
    "ImageSpec",
    "build_images",
    "built_archive",
    "image_name",
    "image_spec",
    "image_specs",
    "sidecar",
]

# Any fixed time gives reproducible builds; 0 says plainly that it is not a build date.
SOURCE_DATE_EPOCH = 0
DOCKERFILES = {
    "mlflow": "mlflow_server/Dockerfile",
    "training": "training/Dockerfile",
    "serving": "scoring_server/Dockerfile",
}
# The tag compose/standins/build.sh gives the MLflow image, so the compose runtime runs this build.
_MLFLOW_TAG = "mlplatform/mlflow-server:local"


class BuildSource(Protocol):
    """What a build needs of a training source (mlplatform.sources.Source is one)."""

    @property
    def name(self) -> str: ...  # noqa: D102

    @property
    def entry_point(self) -> str: ...  # noqa: D102

    @property
    def system_packages(self) -> tuple[str, ...]: ...  # noqa: D102

    def files(self) -> list[Path]: ...  # noqa: D102

    @property
    def root(self) -> Path: ...  # noqa: D102

    def lock_sha256(self) -> str: ...  # noqa: D102


@dataclass(frozen=True)
class ImageSpec:
    """One image to build: its name (archive and log), which of IMAGES it is, its local tag."""

    name: str
    image: str
    tag: str
    # The training source it is built from (training and serving), else None.
    source: BuildSource | None = None

    @property
    def dockerfile(self) -> str:
        """The Dockerfile, relative to the repository."""
        return DOCKERFILES[self.image]


def image_name(image: str, source: str) -> str:
    """What names source `source`'s training or serving image: its archive, log and tag."""
    return f"{image}-{source}"


def image_spec(image: str, source: BuildSource | None = None) -> ImageSpec:
    """The spec of one image: `mlflow`, or `training`/`serving` of `source`."""
    if image not in IMAGES:
        raise ImageError(f"unknown image {image!r}; choose from {', '.join(IMAGES)}")
    if image not in SOURCE_IMAGES:
        return ImageSpec(image, image, _MLFLOW_TAG)
    if source is None:
        raise ImageError(f"the {image} image is built from a training source; name one")
    name = image_name(image, source.name)
    return ImageSpec(name, image, f"mlplatform/{name}:local", source)


def image_specs(images: Sequence[str], sources: Sequence[BuildSource]) -> list[ImageSpec]:
    """The specs of `images` (all three when empty) in their order; ImageError naming the choices.

    The training and serving images once per source in `sources`.
    """
    specs: list[ImageSpec] = []
    for image in images or IMAGES:
        if image in SOURCE_IMAGES:
            specs += [image_spec(image, source) for source in sources]
        else:
            specs.append(image_spec(image))  # ImageError for an unknown name
    return specs


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


def _build_args(
    engine: Engine, spec: ImageSpec, base: str, no_cache: bool, context: Path | None
) -> list[str]:
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
    if spec.source is not None and context is not None:
        args += ["--build-context", f"source={context}"]
        source = spec.source
        args += ["--build-arg", f"ENTRY_POINT={source.entry_point}"]
        args += ["--build-arg", f"SOURCE_NAME={source.name}"]
        args += ["--build-arg", f"LOCK_SHA256={source.lock_sha256()}"]
        args += ["--build-arg", f"SYSTEM_PACKAGES={' '.join(source.system_packages)}"]
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


@contextmanager
def _source_context(spec: ImageSpec, paths: StatePaths) -> Iterator[Path | None]:
    """A folder holding exactly the source's files (Source.files), for `--build-context`.

    Staged rather than the source folder itself: caches, bytecode and local environments in a
    working copy would change the image's bytes.
    """
    if spec.source is None:
        yield None
        return
    paths.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".context-{spec.name}-", dir=paths.root) as tmp:
        root = spec.source.root
        for path in spec.source.files():
            staged = Path(tmp) / path.relative_to(root)
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staged)
        yield Path(tmp)


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

    Work is skipped where nothing changed (never with `no_cache`): when the build's inputs (the
    base image and every file the build context admits) are those the archive was made from and
    the engine still has that image, nothing runs; when a build from the layer cache gives an
    image of the same layers and config, the archive is kept (saving a gigabyte takes a minute).
    """
    base = ensure_base_image(engine, paths, reporter)
    shared = _shared_inputs(engine, base)  # the same for every image: read once
    built = []
    for spec in specs:
        archive = built_archive(paths, spec.name)
        inputs = _inputs(spec, shared)
        saved = None if no_cache else _saved(archive)
        if (
            inputs
            and saved is not None
            and saved.get("inputs") == inputs
            and _has(engine, spec, saved)
        ):
            digest = saved["digest"]
            reporter.done(f"{spec.name} {digest} (inputs unchanged; image and archive kept)")
            built.append(BuiltImage(spec.name, spec.tag, digest, archive))
            continue
        log = paths.logs / "images" / f"{spec.name}.log"
        reporter.step(f"building {spec.name} ({spec.dockerfile} on {base}; log: {log})")
        with _source_context(spec, paths) as context:
            args = _build_args(engine, spec, base, no_cache, context)
            done = engine.run(args, timeout=3600, log=log)
        if done.returncode != 0:
            raise ImageError(f"building the {spec.name} image failed; see {log}")
        content = _content(engine, spec.tag)
        if saved is not None and saved["content"] == content:
            digest = saved["digest"]
            _write_sidecar(archive, digest, content, inputs)
            reporter.done(f"{spec.name} {digest} (unchanged; archive kept)")
        else:
            digest = _save(engine, spec, archive, content, inputs)
            reporter.done(f"{spec.name} {digest}")
        built.append(BuiltImage(spec.name, spec.tag, digest, archive))
    return built


# What an image is, as `image inspect` shows it in Docker and Podman alike. Not the image id:
# Podman gives a rebuild of the same layers and config a new id (and local digest) each time.
_CONTENT = ("Architecture", "Os", "Variant", "Created", "Author", "Config", "RootFS")


def _content(engine: Engine, tag: str) -> str:
    """sha256 over the image's layers and config: the same for the same archive."""
    # JSON, which Docker and Podman agree on (their --format templates differ).
    done = engine.run(["image", "inspect", tag], timeout=120)
    try:
        shown = json.loads(done.stdout)[0]
        fields = {key: shown.get(key) for key in _CONTENT}
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        raise ImageError(f"the engine does not show the image it built ({tag})") from exc
    return "sha256:" + hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _context_files() -> list[Path]:
    """Every file the build context admits: .dockerignore ignores all but its `!` paths."""
    ignore = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    admitted = [line[1:].strip().rstrip("/") for line in ignore if line.startswith("!")]
    files: list[Path] = []
    for entry in admitted:
        path = REPO_ROOT / entry
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return files


def _shared_inputs(engine: Engine, base: str) -> str | None:
    """sha256 over what every build reads: the base image's content and the context files.

    None when the engine cannot show the base (a registry image not pulled yet): then it builds.
    """
    try:
        base_content = _content(engine, base)
    except ImageError:
        return None
    digest = hashlib.sha256(f"{base_content}\n{SOURCE_DATE_EPOCH}\n".encode())
    for path in _context_files():
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _inputs(spec: ImageSpec, shared: str | None) -> str | None:
    """sha256 over what one build reads: Dockerfile, source files and the shared inputs."""
    if shared is None:
        return None
    digest = hashlib.sha256(f"{spec.dockerfile}\n{shared}\n".encode())
    if spec.source is not None:
        digest.update(f"{spec.source.entry_point}\n".encode())
        for path in spec.source.files():
            digest.update(str(path.relative_to(spec.source.root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _has(engine: Engine, spec: ImageSpec, saved: dict[str, str]) -> bool:
    """Whether the engine still has, under the spec's tag, the image the archive holds."""
    try:
        return _content(engine, spec.tag) == saved["content"]
    except ImageError:
        return False  # pruned, or never built on this engine


def sidecar(archive: Path) -> Path:
    """The small file beside an archive: its digest and the content of the image it holds."""
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
    return loaded if isinstance(loaded, dict) and {"digest", "content"} <= set(loaded) else None


def _write_sidecar(archive: Path, digest: str, content: str, inputs: str | None) -> None:
    record = {"digest": digest, "content": content, "inputs": inputs}
    sidecar(archive).write_text(json.dumps(record) + "\n", encoding="utf-8")


def _save(engine: Engine, spec: ImageSpec, archive: Path, content: str, inputs: str | None) -> str:
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
        _write_sidecar(archive, digest, content, inputs)
    finally:
        partial.unlink(missing_ok=True)
    return digest
