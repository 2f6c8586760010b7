"""mlplatform.toolchain.mutation: mutmut's scope, command, scores, and runs that cannot run."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from mlplatform.errors import PlatformError
from mlplatform.toolchain import mutation
from mlplatform.toolchain.mutation import (
    CORE_MODULES,
    mutmut_command,
    mutmut_settings,
    run_mutation,
    score,
    select_modules,
)
from tests.cli import REPO


def test_pyproject_holds_the_settings_mutmut_reads() -> None:
    table = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    assert {key: table.get(key) for key in mutmut_settings()} == mutmut_settings()


def test_every_core_module_and_its_tests_exist() -> None:
    for module in CORE_MODULES.values():
        assert (REPO / module.path).is_file(), module.path
        assert all((REPO / t).is_file() for t in module.tests), module.tests


def test_modules_are_selected_in_their_own_order() -> None:
    assert select_modules(None) == list(CORE_MODULES)
    assert select_modules("config, gate") == ["gate", "config"]


@pytest.mark.parametrize("names", ["gates", "gate,nope", ","])
def test_an_unknown_module_is_one_line_naming_the_choices(names: str) -> None:
    with pytest.raises(PlatformError, match=r"^unknown module .*; choose from promotion, "):
        select_modules(names)


def test_the_command_names_only_the_chosen_modules_mutants() -> None:
    assert mutmut_command(["gate"]) == [
        sys.executable, "-m", "mutmut", "run", "mlplatform.registry.gate.*"
    ]  # fmt: skip
    assert mutmut_command(["chain", "config"], jobs=2)[4:] == [
        "--max-children", "2", "mlplatform.release.chain.*", "mlplatform.config.*"
    ]  # fmt: skip


def test_a_score_counts_timeouts_as_killed_and_untested_mutants_as_not() -> None:
    result = score(
        "gate",
        {
            "m.x_f__mutmut_10": 0,
            "m.x_f__mutmut_9": 0,
            "m.x_f__mutmut_1": 1,
            "m.x_f__mutmut_2": 36,
            "m.x_g__mutmut_1": 33,
            "m.x_g__mutmut_2": None,
        },
    )
    assert (result.killed, result.survived, result.no_tests, result.other) == (2, 2, 1, 1)
    assert result.total == 6 and round(result.percent, 1) == 33.3
    assert result.survivors == ("m.x_f__mutmut_9", "m.x_f__mutmut_10", "m.x_g__mutmut_1")


def _fake_mutmut(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str) -> None:
    """The run starts `python -c script` where it would start mutmut."""
    monkeypatch.setattr(
        mutation, "mutmut_command", lambda modules, jobs=0: [sys.executable, "-c", script]
    )


def test_a_run_whose_clean_tests_fail_raises_mutmuts_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_mutmut(
        monkeypatch, tmp_path, "print('⠋ Running clean tests\\rFailed to run clean test')\nexit(1)"
    )
    with pytest.raises(PlatformError) as caught:
        run_mutation(["gate"], root=tmp_path)
    assert str(caught.value) == (
        "mutmut failed (exit 1): Failed to run clean test; see mutants/invoke-mutate.log"
    )


def test_a_run_that_leaves_no_results_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_mutmut(monkeypatch, tmp_path, "print('done')")
    with pytest.raises(PlatformError, match=r"^mutmut left no results for gate \(gate.py.meta\)"):
        run_mutation(["gate"], root=tmp_path)


def test_a_run_reads_each_modules_results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    meta = tmp_path / "mutants" / "mlplatform" / "registry" / "gate.py.meta"
    codes = {"mlplatform.registry.gate.x_run_gate__mutmut_1": 1}
    _fake_mutmut(
        monkeypatch,
        tmp_path,
        f"import json, pathlib\np = pathlib.Path({str(meta)!r})\np.parent.mkdir(parents=True)\n"
        f"p.write_text(json.dumps({{'exit_code_by_key': {codes!r}}}))",
    )
    [gate] = run_mutation(["gate"], root=tmp_path)
    assert (gate.module, gate.killed, gate.total) == ("gate", 1, 1)
    assert json.loads(meta.read_text())["exit_code_by_key"] == codes
