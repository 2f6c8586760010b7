"""Training sources: a team's directory of training code, described by its source.toml.

    examples/fraud/
      source.toml        entry point, channels, data generator, gate metric
      requirements.in    what the code needs (mlflow and boto3 among it)
      requirements.txt   its hash lock, written by `invoke lock --source examples/fraud`
      train.py           the entry point, under SageMaker's training contract

A source is the unit the kit trains, locks, builds an environment for and serves in: the model
runs where it was trained, in the environment of the source's lock (environment.py).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlplatform.config import REPO_ROOT, Environment
from mlplatform.errors import SourceError

__all__ = [
    "HELPER_ROOT",
    "LOCK_FILE",
    "MANIFEST",
    "REQUIREMENTS",
    "GateSpec",
    "Source",
    "check_lock",
    "configured_sources",
    "load_source",
    "locked_packages",
    "model_source",
]

MANIFEST = "source.toml"
REQUIREMENTS = "requirements.in"
LOCK_FILE = "requirements.txt"
# The folder holding the kit's helper package (mlp_training), put on a source's import path.
HELPER_ROOT = REPO_ROOT
# What the helper imports: a lock without them cannot run the kit's side of the job.
REQUIRED_PACKAGES = ("mlflow", "boto3")
# Never part of a source's fingerprint or its image: caches and local environments.
_IGNORED_PARTS = {"__pycache__", ".venv", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}

RelativeFile = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$")]
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
DebianPackage = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]{1,62}$")]
# What names the source's images (training-<name>, serving-<name>) and their records.
SOURCE_NAME = r"^[a-z][a-z0-9-]{0,39}$"


class GateSpec(BaseModel):
    """The run metric the promotion gate compares, and which way is better."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    metric: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-/ ]{1,250}$")]
    greater_is_better: bool = True


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Default: the folder's name, when it is one (lower case, digits, '-').
    name: Annotated[str, Field(pattern=SOURCE_NAME)] | None = None
    entry_point: RelativeFile = "train.py"
    channels: Annotated[list[ChannelName], Field(min_length=1, max_length=20)] = [
        "train",
        "validation",
    ]
    content_type: str = "text/csv"
    data: RelativeFile | None = None
    # Debian packages the images install for the source's wheels (LightGBM's libgomp1).
    system_packages: Annotated[list[DebianPackage], Field(max_length=50)] = []
    gate: GateSpec


@dataclass(frozen=True)
class Source:
    """A loaded, validated source directory."""

    root: Path
    name: str
    entry_point: str
    channels: tuple[str, ...]
    content_type: str
    data: str | None
    gate: GateSpec
    system_packages: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The source as tags and messages name it: relative to the repository when inside."""
        try:
            return str(self.root.relative_to(REPO_ROOT))
        except ValueError:
            return str(self.root)

    @property
    def lock(self) -> Path:
        """The hash lock (requirements.txt) the environment is made from."""
        return self.root / LOCK_FILE

    @property
    def requirements(self) -> Path:
        """What the lock is compiled from (requirements.in)."""
        return self.root / REQUIREMENTS

    def lock_sha256(self) -> str:
        """sha256 of the lock file; SourceError (with the command to run) when there is none."""
        if not self.lock.is_file():
            raise SourceError(
                f"{self.label} has no {LOCK_FILE}; run `invoke lock --source {self.label}`"
            )
        return hashlib.sha256(self.lock.read_bytes()).hexdigest()

    def files(self) -> list[Path]:
        """The source's files in sorted order, without caches and local environments."""
        return sorted(
            p
            for p in self.root.rglob("*")
            if p.is_file()
            and not _IGNORED_PARTS.intersection(p.relative_to(self.root).parts)
            and p.suffix != ".pyc"
        )

    def sha256(self) -> str:
        """A digest over every file's relative path and bytes: what the job ran."""
        digest = hashlib.sha256()
        for path in self.files():
            digest.update(str(path.relative_to(self.root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def load_source(directory: str | Path) -> Source:
    """Read and check DIR/source.toml; SourceError (one line, naming the key) otherwise."""
    root = Path(directory)
    root = (root if root.is_absolute() else REPO_ROOT / root).resolve()
    shown = directory
    manifest = root / MANIFEST
    if not root.is_dir():
        raise SourceError(f"source {shown}: no such directory")
    if not manifest.is_file():
        raise SourceError(f"source {shown}: no {MANIFEST} (see docs/training.md)")
    try:
        raw = tomllib.loads(manifest.read_text(encoding="utf-8"))
        parsed = _Manifest.model_validate(raw)
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{shown}/{MANIFEST}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or MANIFEST
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise SourceError(f"{shown}/{MANIFEST}: {key}: {msg}") from None
    if len(set(parsed.channels)) != len(parsed.channels):
        raise SourceError(f"{shown}/{MANIFEST}: channels: a channel is listed twice")
    for key in ("entry_point", "data"):
        name = getattr(parsed, key)
        if name is not None and (".." in Path(name).parts or not (root / name).is_file()):
            raise SourceError(f"{shown}/{MANIFEST}: {key}: {name} is not a file of the source")
    name = parsed.name or root.name
    if not re.match(SOURCE_NAME, name):
        raise SourceError(
            f"{shown}/{MANIFEST}: name: the folder name {root.name!r} cannot name the source's "
            "images; set name = \"...\" (lower case letters, digits and '-')"
        )
    return Source(
        root=root,
        name=name,
        entry_point=parsed.entry_point,
        channels=tuple(parsed.channels),
        content_type=parsed.content_type,
        data=parsed.data,
        gate=parsed.gate,
        system_packages=tuple(parsed.system_packages),
    )


def model_source(env: Environment, model: str) -> Source:
    """The training source environments.toml names for `model` (loaded and checked)."""
    return load_source(env.models[env.model(model)].source)


def configured_sources(env: Environment, models: Sequence[str] = ()) -> dict[str, Source]:
    """The sources of `models` (default: every configured model), by source name.

    Two models of one source share it; two sources of one name would share image names and
    release records, so they are refused in one line.
    """
    found: dict[str, Source] = {}
    for model in [env.model(m) for m in models] or list(env.models):
        source = model_source(env, model)
        other = found.setdefault(source.name, source)
        if other.root != source.root:
            raise SourceError(
                f"sources {other.label} and {source.label} are both named {source.name!r}; "
                f"set another name in one's {MANIFEST}"
            )
    return found


def locked_packages(lock: Path) -> set[str]:
    """The normalized names a requirements lock pins (`name==version` lines)."""
    names = set()
    for line in lock.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==", line)
        if found:
            names.add(re.sub(r"[-_.]+", "-", found.group(1)).lower())
    return names


def check_lock(source: Source) -> None:
    """SourceError unless the lock exists and pins what the helper imports (mlflow, boto3)."""
    source.lock_sha256()
    missing = [p for p in REQUIRED_PACKAGES if p not in locked_packages(source.lock)]
    if missing:
        raise SourceError(
            f"{source.label}/{LOCK_FILE} lacks {', '.join(missing)}: add "
            f"{' and '.join(missing)} to {REQUIREMENTS} and run "
            f"`invoke lock --source {source.label}`"
        )
