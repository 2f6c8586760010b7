"""When `invoke build` saves an archive again, and the sidecar that says what an archive holds.

A fake engine stands in for Podman: it "builds" instantly and reports the image id the test
chooses; its `save` writes a small real OCI archive whose content follows that id.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mlplatform.images import build
from mlplatform.images.build import SPECS, build_images, sidecar
from mlplatform.images.engine import Engine
from mlplatform.paths import StatePaths
from mlplatform.reporting import SilentReporter
from tests.oci_images import write_archive


class FakePodman(Engine):
    """Answers `build` and `image inspect`; counts `save`s."""

    image_id = "sha256:" + "1" * 64
    saves = 0

    def run(self, args, timeout=None, log=None):  # type: ignore[no-untyped-def]
        if args[:2] == ["image", "inspect"]:
            out = json.dumps([{"Id": FakePodman.image_id}])
            return subprocess.CompletedProcess(args, 0, out, "")
        if args[0] == "save":
            FakePodman.saves += 1
            write_archive(Path(args[args.index("-o") + 1]), {"id": FakePodman.image_id.encode()})
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakePodman:
    monkeypatch.setattr(build, "ensure_base_image", lambda *a: "mlplatform/python:3.11-bookworm")
    FakePodman.saves = 0
    FakePodman.image_id = "sha256:" + "1" * 64
    return FakePodman("/usr/bin/podman")


def build_training(engine: Engine, paths: StatePaths, no_cache: bool = False) -> str:
    (built,) = build_images([SPECS["training"]], engine, paths, SilentReporter(), no_cache)
    return built.digest


def test_an_unchanged_image_keeps_its_archive_and_a_changed_one_is_saved_again(
    engine: FakePodman, tmp_path: Path
) -> None:
    paths = StatePaths(tmp_path)
    first = build_training(engine, paths)
    archive = build.built_archive(paths, "training")
    assert json.loads(sidecar(archive).read_text()) == {
        "digest": first,
        "image_id": FakePodman.image_id,
    }
    assert (build_training(engine, paths), FakePodman.saves) == (first, 1)

    FakePodman.image_id = "sha256:" + "2" * 64  # the inputs changed: another image
    second = build_training(engine, paths)
    assert second != first and FakePodman.saves == 2

    # --no-cache saves again even for the same image: the archive's bytes are rebuilt too.
    assert build_training(engine, paths, no_cache=True) == second and FakePodman.saves == 3


def test_an_archive_newer_than_its_sidecar_is_saved_again(
    engine: FakePodman, tmp_path: Path
) -> None:
    paths = StatePaths(tmp_path)
    build_training(engine, paths)
    archive = build.built_archive(paths, "training")
    stamp = sidecar(archive).stat().st_mtime
    os.utime(archive, (stamp + 10, stamp + 10))  # replaced by hand, or an interrupted build
    build_training(engine, paths)
    assert FakePodman.saves == 2
