"""The library's layers (docs/architecture.md): each package imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.cli import REPO

# Lower rank first; a package may import its own modules and packages of a lower rank only
# (layer 0's small modules may also import each other: errors <- config <- names, paths).
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        [
            "errors",
            "config",
            "names",
            "paths",
            "readiness",
            "reporting",
            "child_env",
            "console",
            "roster",
        ],
        0,
    ),
    **dict.fromkeys(["cloud", "registry", "toolchain"], 1),
    **dict.fromkeys(["local", "images", "sources"], 2),
    "target": 3,
    **dict.fromkeys(["runners", "serving", "doctor", "teams"], 4),
    **dict.fromkeys(["release", "reproduce"], 5),
    # The emulated account bootstraps itself with release's CDK CLI.
    "emulator": 6,
}


def _imports(path: Path) -> set[str]:
    """Every module an import statement of `path` names (absolute imports only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _package(module: str) -> str | None:
    """`mlplatform.registry.client` -> `registry`; None outside the library."""
    parts = module.split(".")
    return parts[1] if parts[0] == "mlplatform" and len(parts) > 1 else None


def _sources(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_every_library_package_has_a_layer() -> None:
    packages = {p.stem for p in (REPO / "mlplatform").iterdir() if p.suffix == ".py"} | {
        p.name for p in (REPO / "mlplatform").iterdir() if (p / "__init__.py").exists()
    }
    assert packages - {"__init__"} == set(LAYERS)


@pytest.mark.parametrize("path", _sources("mlplatform"), ids=lambda p: str(p.relative_to(REPO)))
def test_a_package_imports_only_lower_layers(path: Path) -> None:
    own = _package(".".join(path.relative_to(REPO).with_suffix("").parts))
    assert own is not None
    for module in _imports(path):
        assert module.split(".")[0] not in {"infra", "tasks", "tests", "bench"}, module
        other = _package(module)
        if other is None or other == own or other not in LAYERS:
            continue  # outside the library, the same package, or a name imported from it
        allowed = LAYERS[other] < LAYERS[own] or LAYERS[own] == LAYERS[other] == 0
        assert allowed, f"{own} (layer {LAYERS[own]}) imports {module}"


@pytest.mark.parametrize(
    "folder", ["mlflow_server", "scoring_server", "training", "mlp_training", "examples"]
)
def test_the_images_own_code_imports_no_kit_code(folder: str) -> None:
    """The images ship these folders alone (server, serving, training: the helper and the
    sources with it), in an environment without the kit: a kit import fails."""
    assert _sources(folder) or folder == "training", folder
    for path in _sources(folder):
        roots = {m.split(".")[0] for m in _imports(path)}
        assert not roots & {"mlplatform", "infra", "tasks"}, path


def test_infra_depends_on_the_library_only_through_settings_and_names() -> None:
    """infra/ reads typed settings, the teams file and shared names; it never runs a job."""
    allowed = {"config", "errors", "names", "release", "roster"}
    for path in _sources("infra"):
        for module in _imports(path):
            other = _package(module)
            assert other is None or other in allowed, (path, module)
