"""`invoke build`'s choices, its reproducibility flags and the engine it finds (no engine runs)."""

from __future__ import annotations

import os
import resource
import stat
from pathlib import Path

import pytest

from mlplatform.errors import EngineMissingError, ImageError
from mlplatform.images import build
from mlplatform.images.base import cache_archive
from mlplatform.images.engine import Engine, find_engine
from mlplatform.names import IMAGES, LOCK_LABEL, SOURCE_LABEL
from mlplatform.paths import StatePaths
from mlplatform.sources import load_source
from tests.cli import REPO

FRAUD = load_source("examples/fraud")
FORECAST = load_source("examples/forecast")


def test_every_image_with_an_ecr_repository_is_built_from_a_dockerfile_here() -> None:
    assert tuple(build.DOCKERFILES) == IMAGES
    for dockerfile in build.DOCKERFILES.values():
        assert (REPO / dockerfile).is_file(), dockerfile


def test_what_the_dockerignore_lets_in_covers_every_image_and_no_source() -> None:
    """Each Dockerfile's COPY sources must pass .dockerignore, or the build sees nothing; a
    source reaches its build as a context of its own, never through the repository's."""
    allowed = (REPO / ".dockerignore").read_text().splitlines()
    for dockerfile in build.DOCKERFILES.values():
        assert f"!{dockerfile.split('/')[0]}/" in allowed, dockerfile
    assert "!examples/" not in allowed


def test_training_and_serving_are_built_once_per_source_in_the_asked_order() -> None:
    specs = build.image_specs([], [FRAUD, FORECAST])
    assert [s.name for s in specs] == [
        "mlflow",
        "training-fraud",
        "training-forecast",
        "serving-fraud",
        "serving-forecast",
    ]
    assert [s.tag for s in specs][1:3] == [
        "mlplatform/training-fraud:local",
        "mlplatform/training-forecast:local",
    ]
    assert [s.name for s in build.image_specs(["serving", "mlflow"], [FORECAST])] == [
        "serving-forecast",
        "mlflow",
    ]


def test_an_unknown_image_is_one_line_naming_the_choices() -> None:
    with pytest.raises(ImageError) as caught:
        build.image_specs(["mlflow", "webapp"], [FRAUD])
    assert str(caught.value) == "unknown image 'webapp'; choose from mlflow, training, serving"


@pytest.mark.parametrize("no_cache", [False, True])
def test_podman_builds_are_stamped_with_the_fixed_time_and_no_history(no_cache: bool) -> None:
    spec = build.image_spec("serving", FORECAST)
    staged = Path("/staged/forecast")
    args = build._build_args(Engine("/usr/bin/podman"), spec, "base:1", no_cache, staged)
    assert args[0] == "build" and args[-1] == str(REPO)
    joined = " ".join(args)
    # The source is a build context of its own, and its entry point a build argument.
    assert f"--build-context source={staged}" in joined
    assert "--build-arg ENTRY_POINT=train.py" in joined
    # Which the image's labels carry (names.SOURCE_LABEL, LOCK_LABEL: the emulated endpoint
    # serves in that lock's environment).
    assert "--build-arg SOURCE_NAME=forecast" in joined
    assert f"--build-arg LOCK_SHA256={FORECAST.lock_sha256()}" in joined
    assert "--build-arg BASE_IMAGE=base:1" in joined
    assert f"--build-arg SOURCE_DATE_EPOCH={build.SOURCE_DATE_EPOCH}" in joined
    assert f"--timestamp {build.SOURCE_DATE_EPOCH}" in joined
    assert "--omit-history" in args and "--format docker" in joined
    assert ("--no-cache" in args) is no_cache


def test_docker_builds_rewrite_timestamps_instead() -> None:
    args = build._build_args(Engine("docker"), build.image_spec("mlflow"), "base:1", False, None)
    assert "type=docker,rewrite-timestamp=true" in args
    assert "--timestamp" not in args


def test_each_dockerfile_hands_source_date_epoch_to_pip() -> None:
    """pip byte-compiles with the build's time unless SOURCE_DATE_EPOCH reaches it."""
    for dockerfile in build.DOCKERFILES.values():
        text = (REPO / dockerfile).read_text()
        assert "ARG SOURCE_DATE_EPOCH" in text, dockerfile
        assert "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} python -m pip install" in text, dockerfile


def _program(folder: Path, name: str, code: int) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho 'cannot connect to the engine' >&2\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_an_engine_that_does_not_answer_counts_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _program(tmp_path, "podman", 125)
    _program(tmp_path, "docker", 1)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MLP_ENGINE", raising=False)
    with pytest.raises(EngineMissingError) as caught:
        find_engine()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no container engine answers (tried podman, docker): apt-get")


def test_the_first_engine_that_answers_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _program(tmp_path, "podman", 1)
    docker = _program(tmp_path, "docker", 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MLP_ENGINE", raising=False)
    engine = find_engine()
    assert engine == Engine(str(docker)) and engine.kind == "docker"
    monkeypatch.setenv("MLP_ENGINE", "podman")
    with pytest.raises(EngineMissingError, match=r"\(tried podman\)"):
        find_engine()


def test_the_base_image_cache_lives_in_the_state_folder(tmp_path: Path) -> None:
    path = cache_archive(StatePaths(tmp_path), "localhost/mlplatform/python:3.11-bookworm")
    assert path.parent == tmp_path / "images" / "base"
    assert os.sep not in path.name and ":" not in path.name


def _instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (REPO / dockerfile).read_text().replace("\\\n", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_serving_and_training_share_the_install_layer() -> None:
    """Same instructions up to the install: one build of the biggest layer serves both images."""
    training = _instructions(build.DOCKERFILES["training"])
    serving = _instructions(build.DOCKERFILES["serving"])
    install = next(i for i, line in enumerate(training) if "pip install" in line)
    # The source's lock, from the build context both images get for one source.
    assert "-r /opt/program/requirements.txt" in training[install]
    assert "COPY --from=source requirements.txt /opt/program/requirements.txt" in training
    assert serving[: install + 1] == training[: install + 1]
    specs = [build.image_spec(image, FORECAST) for image in ("training", "serving")]
    assert specs[0].source is specs[1].source is FORECAST


@pytest.mark.parametrize("image", ["training", "serving"])
def test_the_source_images_are_labelled_with_their_source_and_lock(image: str) -> None:
    instructions = _instructions(build.DOCKERFILES[image])
    labelled = [line for line in instructions if line.startswith("LABEL")]
    assert labelled == [
        f'LABEL {SOURCE_LABEL}="${{SOURCE_NAME}}" {LOCK_LABEL}="${{LOCK_SHA256}}"'
    ], labelled


def test_a_source_context_holds_the_sources_files_and_no_cache(tmp_path: Path) -> None:
    """What the image's /opt/program/source holds: exactly the files the source's sha256 covers."""
    root = tmp_path / "churn"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "source.toml").write_text('[gate]\nmetric = "auc"\n')
    (root / "train.py").write_text("print('train')\n")
    (root / "pkg" / "model.py").write_text("X = 1\n")
    (root / "pkg" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    (root / ".venv" / "bin" / "python").write_text("")
    source = load_source(root)
    spec = build.image_spec("training", source)
    with build._source_context(spec, StatePaths(tmp_path / "state")) as staged:
        assert staged is not None
        held = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
        assert (staged / "pkg" / "model.py").read_text() == "X = 1\n"
    assert held == ["pkg/model.py", "source.toml", "train.py"]
    assert not staged.exists()  # removed after the build


def test_podman_containers_ask_for_no_more_rlimits_than_the_engine_holds() -> None:
    flags = Engine("/usr/bin/podman").limit_flags()
    asked = dict(flag.split("=", 1) for flag in flags[1::2])
    assert flags[0::2] == ["--ulimit", "--ulimit"] and set(asked) == {"nofile", "nproc"}
    for name, limit, cap in (
        ("nofile", resource.RLIMIT_NOFILE, 1_048_576),
        ("nproc", resource.RLIMIT_NPROC, 32_768),
    ):
        soft, hard = (int(v) for v in asked[name].split(":"))
        held = resource.getrlimit(limit)[1]
        assert soft == hard <= cap
        assert held == resource.RLIM_INFINITY or hard <= held
    assert Engine("docker").limit_flags() == []
