"""`invoke build`: the three images AWS runs, built here from the hash-locked requirements.

    mlflow    mlflow_server/Dockerfile   the tracking server ECS runs
    training  training/Dockerfile        the SageMaker training job's image (of IMAGE_SOURCE)
    serving   scoring_server/Dockerfile  the SageMaker endpoint's image (IMAGE_SOURCE's lock)

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ImageError
from mlplatform.images.base import ensure_base_image
from mlplatform.images.engine import Engine
from mlplatform.images.oci_archive import open_image, save_archive
from mlplatform.names import IMAGE_SOURCE
from mlplatform.paths import StatePaths
from mlplatform.reporting import Reporter

__all__ = [
    "IMAGE_SOURCE",
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
    # The training source it is built from (training and serving), else None.
    source: str | None = None


SPECS = {
    spec.name: spec
    for spec in (
        # The tag compose/standins/build.sh gives it, so the compose runtime runs this build.
        ImageSpec("mlflow", "mlflow_server/Dockerfile", "mlplatform/mlflow-server:local"),
        ImageSpec("training", "training/Dockerfile", "mlplatform/training:local", IMAGE_SOURCE),
        ImageSpec("serving", "scoring_server/Dockerfile", "mlplatform/serving:local", IMAGE_SOURCE),
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
    if spec.source is not None:
        args += ["--build-arg", f"SOURCE={spec.source}"]
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
        done = engine.run(_build_args(engine, spec, base, no_cache), timeout=3600, log=log)
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
    """sha256 over what one build reads: its Dockerfile, its source and the shared inputs."""
    if shared is None:
        return None
    read = f"{spec.dockerfile}\n{spec.source}\n{shared}"
    return "sha256:" + hashlib.sha256(read.encode()).hexdigest()


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
