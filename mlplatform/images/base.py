"""The base image the kit's images build on, made without a container registry.

No registry answers on the machines the kit is built for, so compose/standins/build.sh makes the
base (Debian by debootstrap + `podman import`, then Python in a venv: a stand-in for
python:3.11-slim). That takes minutes, so once made it is saved as an OCI archive in the state
folder and loaded from there when the engine's storage no longer has it (a reset engine, a new
runner with a restored state folder). MLP_BASE_IMAGE names another base (for example the
official python:3.11-slim where a registry answers); it is then used as it is.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import ImageError
from mlplatform.images.engine import Engine, engine_environment
from mlplatform.images.oci_archive import save_archive
from mlplatform.paths import StatePaths
from mlplatform.reporting import Reporter

__all__ = ["STANDINS", "base_image", "ensure_base_image", "has_image"]

STANDINS = REPO_ROOT / "compose" / "standins"
BUILD_SCRIPT = STANDINS / "build.sh"


def base_image() -> str:
    """build.sh's MLP_BASE_IMAGE: the caller's value, else the script's default tag."""
    env = engine_environment()
    if "MLP_BASE_IMAGE" in os.environ:
        env["MLP_BASE_IMAGE"] = os.environ["MLP_BASE_IMAGE"]
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-env"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("export MLP_BASE_IMAGE="):
            # build.sh prints shell-quoted values (printf %q).
            value = shlex.split(line.partition("=")[2])
            if value and value[0]:
                return value[0]
    raise ImageError(f"{BUILD_SCRIPT.name} --print-env names no MLP_BASE_IMAGE")


def has_image(engine: Engine, reference: str) -> bool:
    """Whether the engine's storage holds `reference` (Docker and Podman agree on inspect)."""
    return engine.run(["image", "inspect", reference], timeout=60).returncode == 0


def cache_archive(paths: StatePaths, reference: str) -> Path:
    """Where the state folder keeps a saved copy of the base image `reference`."""
    return paths.root / "images" / "base" / (re.sub(r"[^A-Za-z0-9_.-]", "_", reference) + ".tar")


def ensure_base_image(engine: Engine, paths: StatePaths, reporter: Reporter) -> str:
    """The base image's reference, loaded from the state folder or made when the engine lacks it."""
    reference = base_image()
    if has_image(engine, reference):
        return reference
    if "MLP_BASE_IMAGE" in os.environ:
        raise ImageError(
            f"MLP_BASE_IMAGE={reference} is not in the engine's storage; pull or load it, "
            "or unset MLP_BASE_IMAGE to have the kit make its own"
        )
    log = paths.logs / "images" / "base.log"
    cache = cache_archive(paths, reference)
    if cache.is_file():
        reporter.step(f"loading the base image {reference} from {cache}")
        engine.run(["load", "-i", str(cache)], timeout=1800, log=log)
        if has_image(engine, reference):
            return reference
        reporter.warn(f"{cache} did not hold {reference}; making it again")
    reporter.step(f"making the base image {reference} (debootstrap; minutes; log: {log})")
    env = {**engine_environment(), "MLP_ENGINE": engine.program}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as out:
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--base"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
            check=False,
        )
    if done.returncode != 0 or not has_image(engine, reference):
        raise ImageError(f"the base image {reference} could not be made; see {log}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_archive(engine, reference, cache)
    return reference
