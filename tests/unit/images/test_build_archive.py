"""When `invoke build` saves an archive again, and the sidecar that says what an archive holds.

A fake engine stands in for Podman: it "builds" instantly and shows an image whose layers the
test chooses, under a new id on every build (as Podman does); its `save` writes a small real OCI
archive whose content follows the layers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mlplatform.images import build
from mlplatform.images.build import build_images, image_spec, sidecar
from mlplatform.images.engine import Engine
from mlplatform.paths import StatePaths
from mlplatform.reporting import SilentReporter
from mlplatform.sources import load_source
from tests.oci_images import write_archive


class FakePodman(Engine):
    """Answers `build` and `image inspect`; counts `save`s."""

    layer = "sha256:" + "1" * 64
    saves = 0
    builds = 0

    def run(self, args, timeout=None, log=None):  # type: ignore[no-untyped-def]
        if args[0] == "build":
            FakePodman.builds += 1
        if args[:2] == ["image", "inspect"]:
            shown = {
                "Id": f"{FakePodman.builds:064x}",  # new on every build, as Podman's
                "RootFS": {"Type": "layers", "Layers": [FakePodman.layer]},
                "Config": {"Cmd": ["train"]},
            }
            return subprocess.CompletedProcess(args, 0, json.dumps([shown]), "")
        if args[0] == "save":
            FakePodman.saves += 1
            write_archive(Path(args[args.index("-o") + 1]), {"layer": FakePodman.layer.encode()})
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakePodman:
    monkeypatch.setattr(build, "ensure_base_image", lambda *a: "mlplatform/python:3.11-bookworm")
    # The build context: one file the tests change.
    context = tmp_path / "context.py"
    context.write_text("v1")
    monkeypatch.setattr(build, "_context_files", lambda: [context])
    monkeypatch.setattr(build, "REPO_ROOT", tmp_path)
    FakePodman.saves = FakePodman.builds = 0
    FakePodman.layer = "sha256:" + "1" * 64
    return FakePodman("/usr/bin/podman")


def build_training(engine: Engine, paths: StatePaths, no_cache: bool = False) -> str:
    spec = image_spec("training", load_source("examples/fraud"))
    (built,) = build_images([spec], engine, paths, SilentReporter(), no_cache)
    return built.digest


def test_unchanged_inputs_run_nothing_and_changed_ones_rebuild_and_save(
    engine: FakePodman, tmp_path: Path
) -> None:
    paths = StatePaths(tmp_path / "state")
    first = build_training(engine, paths)
    archive = build.built_archive(paths, "training-fraud")
    assert json.loads(sidecar(archive).read_text())["digest"] == first
    assert (FakePodman.builds, FakePodman.saves) == (1, 1)
    # Same inputs, and the engine still has the image: no build, no save.
    assert build_training(engine, paths) == first
    assert (FakePodman.builds, FakePodman.saves) == (1, 1)

    (tmp_path / "context.py").write_text("v2")  # an input changed, and with it a layer
    FakePodman.layer = "sha256:" + "2" * 64
    second = build_training(engine, paths)
    assert second != first and (FakePodman.builds, FakePodman.saves) == (2, 2)

    # --no-cache builds and saves again even so: the archive's bytes are remade too.
    assert build_training(engine, paths, no_cache=True) == second
    assert (FakePodman.builds, FakePodman.saves) == (3, 3)


def test_a_rebuild_giving_the_same_layers_keeps_the_archive(
    engine: FakePodman, tmp_path: Path
) -> None:
    paths = StatePaths(tmp_path / "state")
    first = build_training(engine, paths)
    # Another input (a comment, say) but the same layers and config: Podman gives it a new id.
    (tmp_path / "context.py").write_text("v1 # reworded")
    assert build_training(engine, paths) == first
    assert (FakePodman.builds, FakePodman.saves) == (2, 1)


def test_an_archive_newer_than_its_sidecar_is_saved_again(
    engine: FakePodman, tmp_path: Path
) -> None:
    paths = StatePaths(tmp_path / "state")
    build_training(engine, paths)
    archive = build.built_archive(paths, "training-fraud")
    stamp = sidecar(archive).stat().st_mtime
    os.utime(archive, (stamp + 10, stamp + 10))  # replaced by hand, or an interrupted build
    build_training(engine, paths)
    assert (FakePodman.builds, FakePodman.saves) == (2, 2)
