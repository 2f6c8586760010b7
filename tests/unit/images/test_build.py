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
from mlplatform.names import IMAGES
from mlplatform.paths import StatePaths
from tests.cli import REPO


def test_every_image_with_an_ecr_repository_is_built_from_a_dockerfile_here() -> None:
    assert tuple(build.SPECS) == IMAGES
    for spec in build.SPECS.values():
        assert (REPO / spec.dockerfile).is_file(), spec


def test_what_the_dockerignore_lets_in_covers_every_image() -> None:
    """Each Dockerfile's COPY sources must pass .dockerignore, or the build sees nothing."""
    allowed = (REPO / ".dockerignore").read_text().splitlines()
    for spec in build.SPECS.values():
        folder = spec.dockerfile.split("/")[0]
        assert f"!{folder}/" in allowed, spec.name


def test_no_name_selects_all_three_and_names_keep_their_order() -> None:
    assert [s.name for s in build.select([])] == ["mlflow", "training", "serving"]
    assert [s.name for s in build.select(["serving", "mlflow"])] == ["serving", "mlflow"]


def test_an_unknown_image_is_one_line_naming_the_choices() -> None:
    with pytest.raises(ImageError) as caught:
        build.select(["mlflow", "webapp"])
    assert str(caught.value) == "unknown image 'webapp'; choose from mlflow, training, serving"


@pytest.mark.parametrize("no_cache", [False, True])
def test_podman_builds_are_stamped_with_the_fixed_time_and_no_history(no_cache: bool) -> None:
    args = build._build_args(Engine("/usr/bin/podman"), build.SPECS["serving"], "base:1", no_cache)
    assert args[0] == "build" and args[-1] == str(REPO)
    joined = " ".join(args)
    assert "--build-arg BASE_IMAGE=base:1" in joined
    assert f"--build-arg SOURCE_DATE_EPOCH={build.SOURCE_DATE_EPOCH}" in joined
    assert f"--timestamp {build.SOURCE_DATE_EPOCH}" in joined
    assert "--omit-history" in args and "--format docker" in joined
    assert ("--no-cache" in args) is no_cache


def test_docker_builds_rewrite_timestamps_instead() -> None:
    args = build._build_args(Engine("docker"), build.SPECS["mlflow"], "base:1", False)
    assert "type=docker,rewrite-timestamp=true" in args
    assert "--timestamp" not in args


def test_each_dockerfile_hands_source_date_epoch_to_pip() -> None:
    """pip byte-compiles with the build's time unless SOURCE_DATE_EPOCH reaches it."""
    for spec in build.SPECS.values():
        text = (REPO / spec.dockerfile).read_text()
        assert "ARG SOURCE_DATE_EPOCH" in text, spec.name
        assert "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} python -m pip install" in text, spec.name


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
    training = _instructions(build.SPECS["training"].dockerfile)
    serving = _instructions(build.SPECS["serving"].dockerfile)
    install = next(i for i, line in enumerate(training) if "pip install" in line)
    # The source's lock, named by the build argument both images get (the kit's IMAGE_SOURCE).
    assert "-r /opt/program/requirements.txt" in training[install]
    assert f"ARG SOURCE={build.IMAGE_SOURCE}" in training[:install]
    assert serving[: install + 1] == training[: install + 1]
    assert build.SPECS["training"].source == build.SPECS["serving"].source == build.IMAGE_SOURCE


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
