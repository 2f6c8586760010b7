"""Mutation testing of the core modules with mutmut (`invoke mutate`, docs/testing.md).

mutmut copies the library to mutants/, rewrites each function of the modules in scope so that
every small change to it (a mutant) can be switched on alone, and runs the tests that cover the
function against each mutant. A mutant the tests do not notice has survived: a test is missing,
or the change is equivalent (it cannot change behaviour).

mutmut reads its settings from [tool.mutmut] in pyproject.toml and nowhere else;
`mutmut_settings()` is what that table must hold, and a unit test keeps the two equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlplatform.config import REPO_ROOT
from mlplatform.errors import PlatformError

__all__ = [
    "CORE_MODULES",
    "CoreModule",
    "ModuleScore",
    "mutmut_command",
    "mutmut_settings",
    "run_mutation",
    "score",
    "select_modules",
]


@dataclass(frozen=True)
class CoreModule:
    """A module in scope and the unit tests that are meant to kill its mutants."""

    path: str
    tests: tuple[str, ...]

    @property
    def dotted(self) -> str:
        """`mlplatform/registry/gate.py` -> `mlplatform.registry.gate` (mutmut's mutant prefix)."""
        return self.path.removesuffix(".py").replace("/", ".")


# Only fast unit tests (SQLite registries, moto in-process, no server): a mutant reruns the
# tests covering its function, so a slow test here is paid once per mutant.
CORE_MODULES: dict[str, CoreModule] = {
    "promotion": CoreModule(
        "mlplatform/registry/promotion.py",
        (
            "tests/unit/registry/test_promotion_integrity.py",
            "tests/unit/registry/test_promotion_lineage.py",
        ),
    ),
    "archive": CoreModule(
        "mlplatform/registry/archive.py", ("tests/unit/registry/test_archive_reproducible.py",)
    ),
    "gate": CoreModule(
        "mlplatform/registry/gate.py", ("tests/unit/registry/test_promotion_gate.py",)
    ),
    "chain": CoreModule(
        "mlplatform/release/chain.py",
        (
            "tests/unit/release/test_deploy_chain.py",
            "tests/unit/release/test_failed_first_deploy.py",
        ),
    ),
    "config": CoreModule("mlplatform/config.py", ("tests/unit/test_config.py",)),
}

# mutmut's exit code per mutant (mutants/<path>.meta) -> how this report counts it. A timeout
# counts as detected: the mutant made the tests hang, which a run would notice.
_KILLED = {1, 3, 36, 37, 24, -24, 152, 255}
_SURVIVED = {0}
_NO_TESTS = {33, 5}
_NOT_CHECKED = {None}

LOG_NAME = "invoke-mutate.log"


@dataclass(frozen=True)
class ModuleScore:
    """One module's mutants after a run: detected (killed or timed out), survived, untested."""

    module: str
    killed: int
    survived: int
    no_tests: int
    other: int
    survivors: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        """Every mutant mutmut made of the module."""
        return self.killed + self.survived + self.no_tests + self.other

    @property
    def percent(self) -> float:
        """Killed mutants as a share of all of them (0 when the module had none)."""
        return 100.0 * self.killed / self.total if self.total else 0.0


def select_modules(names: str | None) -> list[str]:
    """`gate,archive` -> those core modules in CORE_MODULES order; empty or None: all of them."""
    if not names:
        return list(CORE_MODULES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in CORE_MODULES]
    if unknown or not wanted:
        raise PlatformError(
            f"unknown module {unknown[0] if unknown else names!r}; "
            f"choose from {', '.join(CORE_MODULES)}"
        )
    return [n for n in CORE_MODULES if n in wanted]


def mutmut_settings() -> dict[str, list[str]]:
    """The [tool.mutmut] keys `invoke mutate` relies on, as pyproject.toml must hold them."""
    tests = [t for m in CORE_MODULES.values() for t in m.tests]
    return {
        # The whole package is copied so the mutated modules import their neighbours unchanged.
        "source_paths": ["mlplatform"],
        "only_mutate": [m.path for m in CORE_MODULES.values()],
        # Tests read the repository's environments.toml and call tasks.py beside the package.
        "also_copy": ["environments.toml", "tasks.py"],
        "pytest_add_cli_args_test_selection": list(dict.fromkeys(tests)),
        "pytest_add_cli_args": [
            "-m",
            "not integration and not container",
            "-p",
            "no:cacheprovider",
        ],
    }


def mutmut_command(modules: list[str], jobs: int = 0) -> list[str]:
    """The argv of `mutmut run` limited to `modules`' mutants; jobs 0 is one worker per core."""
    # Naming the mutants makes mutmut re-test them even when an earlier run left a result, so
    # the score always describes the code and tests as they are now.
    patterns = [f"{CORE_MODULES[m].dotted}.*" for m in modules]
    args = [sys.executable, "-m", "mutmut", "run"]
    if jobs > 0:
        args += ["--max-children", str(jobs)]
    return args + patterns


def score(module: str, exit_codes: dict[str, int | None]) -> ModuleScore:
    """Count one module's mutants from mutmut's `exit_code_by_key` (mutant name -> exit code)."""
    kinds: Counter[str] = Counter()
    survivors = []
    for name, code in exit_codes.items():
        if code in _KILLED:
            kinds["killed"] += 1
        elif code in _SURVIVED:
            kinds["survived"] += 1
            survivors.append(name)
        elif code in _NO_TESTS:
            kinds["no_tests"] += 1
            survivors.append(name)
        else:
            # Suspicious, segfault, interrupted or never checked: neither killed nor survived.
            kinds["other"] += 1
    return ModuleScore(
        module,
        killed=kinds["killed"],
        survived=kinds["survived"],
        no_tests=kinds["no_tests"],
        other=kinds["other"],
        survivors=tuple(sorted(survivors, key=_natural)),
    )


def _natural(name: str) -> tuple[str, int]:
    """`x_f__mutmut_10` after `x_f__mutmut_9`, as in the source."""
    stem, _, number = name.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def _last_line(text: str) -> str:
    """The last line mutmut printed that is not its progress spinner."""
    lines = [part.strip() for line in text.splitlines() for part in line.split("\r")]
    lines = [line for line in lines if line and not line.startswith(("⠋", "⠙", "⠹", "⠸", "⠼"))]
    return lines[-1] if lines else "no output"


def _read_scores(root: Path, modules: list[str]) -> list[ModuleScore]:
    scores = []
    for name in modules:
        meta = root / "mutants" / f"{CORE_MODULES[name].path}.meta"
        try:
            codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        except (OSError, ValueError, KeyError) as exc:
            raise PlatformError(f"mutmut left no results for {name} ({meta.name}): {exc}") from exc
        module_score = score(name, codes)
        if module_score.total == 0 or module_score.other == module_score.total:
            raise PlatformError(f"mutmut tested no mutant of {name}; see mutants/{LOG_NAME}")
        scores.append(module_score)
    return scores


def run_mutation(modules: list[str], jobs: int = 0, root: Path = REPO_ROOT) -> list[ModuleScore]:
    """Run mutmut over `modules` from `root` and return each module's score.

    mutmut's progress goes to mutants/invoke-mutate.log. A run that cannot run (mutmut missing,
    the clean tests failing, no results written) raises PlatformError with mutmut's last line.
    """
    log = root / "mutants" / LOG_NAME
    log.parent.mkdir(exist_ok=True)
    # A child of this run must import the mutated copy in mutants/, never the checkout itself.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(
            mutmut_command(modules, jobs),
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if result.returncode != 0:
        text = log.read_text(encoding="utf-8", errors="replace")
        raise PlatformError(
            f"mutmut failed (exit {result.returncode}): {_last_line(text)}; see mutants/{LOG_NAME}"
        )
    return _read_scores(root, modules)
