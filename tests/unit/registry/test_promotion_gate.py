"""The promotion gate's decisions, on an in-memory registry that behaves like MLflow's client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
)

from mlplatform.errors import RegistryError
from mlplatform.registry.gate import run_gate


class FakeRegistry:
    """Versions with run metrics and aliases; the calls run_gate makes, nothing more."""

    def __init__(self, metrics: dict[str, dict[str, float]]) -> None:
        self.metrics = metrics  # version -> run metrics
        self.aliases: dict[str, str] = {}
        self.tags: dict[tuple[str, str], str] = {}  # (version, key) -> value

    def get_model_version_by_alias(self, name: str, alias: str):  # type: ignore[no-untyped-def]
        if name != "m":
            raise MlflowException(f"model {name} not found", error_code=RESOURCE_DOES_NOT_EXIST)
        if alias not in self.aliases:
            raise MlflowException(f"alias {alias} not found", error_code=INVALID_PARAMETER_VALUE)
        version = self.aliases[alias]
        return SimpleNamespace(name=name, version=version, run_id=f"run-{version}")

    def get_run(self, run_id: str):  # type: ignore[no-untyped-def]
        return SimpleNamespace(
            data=SimpleNamespace(metrics=self.metrics[run_id.removeprefix("run-")])
        )

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        assert name == "m", name
        self.aliases[alias] = str(version)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        assert name == "m", name
        self.tags[(str(version), key)] = value


def test_first_challenger_becomes_champion() -> None:
    reg = FakeRegistry({"1": {"average_precision": 0.4}})
    reg.aliases["challenger"] = "1"
    decision = run_gate(reg, "m", "average_precision", 0.0)
    assert decision.promoted and decision.reason == "no champion yet"
    assert reg.aliases["champion"] == "1"


def test_who_moved_champion_is_recorded_on_the_version() -> None:
    reg = FakeRegistry({"1": {"f1": 0.4}, "2": {"f1": 0.3}})
    reg.aliases["challenger"] = "1"
    run_gate(reg, "m", "f1", 0.0, actor="ann")
    assert reg.tags == {("1", "mlp.champion.set_by"): "ann"}
    # Nothing is recorded where champion does not move.
    reg.aliases["challenger"] = "2"
    assert not run_gate(reg, "m", "f1", 0.0, actor="ben").promoted
    assert reg.tags == {("1", "mlp.champion.set_by"): "ann"}


def test_better_challenger_is_promoted_worse_is_not() -> None:
    reg = FakeRegistry(
        {
            "1": {"average_precision": 0.40},
            "2": {"average_precision": 0.45},
            "3": {"average_precision": 0.30},
        }
    )
    reg.aliases.update(champion="1", challenger="2")
    decision = run_gate(reg, "m", "average_precision", 0.01)
    assert decision.promoted and reg.aliases["champion"] == "2"
    assert decision.champion_version == "1" and decision.champion_value == 0.40
    reg.aliases["challenger"] = "3"
    decision = run_gate(reg, "m", "average_precision", 0.0)
    assert not decision.promoted and reg.aliases["champion"] == "2"
    assert decision.reason == "average_precision 0.3000 < champion's 0.4500 + 0"


def test_min_improvement_is_required() -> None:
    reg = FakeRegistry({"1": {"roc_auc": 0.90}, "2": {"roc_auc": 0.905}})
    reg.aliases.update(champion="1", challenger="2")
    assert not run_gate(reg, "m", "roc_auc", 0.01).promoted
    assert reg.aliases["champion"] == "1"


def test_same_version_is_a_no_op() -> None:
    reg = FakeRegistry({"1": {"f1": 0.5}})
    reg.aliases.update(champion="1", challenger="1")
    decision = run_gate(reg, "m", "f1", 0.0)
    assert not decision.promoted and decision.reason == "challenger is already champion"


def test_missing_challenger_or_metric_is_a_registry_error() -> None:
    reg = FakeRegistry({"1": {"f1": 0.5}})
    with pytest.raises(RegistryError, match="has no 'challenger' version; run `invoke train`"):
        run_gate(reg, "m", "f1", 0.0)
    reg.aliases["challenger"] = "1"
    with pytest.raises(RegistryError, match="has no metric 'roc_auc'"):
        run_gate(reg, "m", "roc_auc", 0.0)
    assert "champion" not in reg.aliases


def test_equal_metric_promotes_when_no_improvement_is_required() -> None:
    """ "At least as good" includes equal (catches `>=` turned into `>`)."""
    reg = FakeRegistry({"1": {"f1": 0.5}, "2": {"f1": 0.5}})
    reg.aliases.update(champion="1", challenger="2")
    decision = run_gate(reg, "m", "f1", 0.0)
    assert decision.promoted and reg.aliases["champion"] == "2"
    assert decision.reason == "f1 0.5000 >= champion's 0.5000 + 0"


def test_exactly_the_required_improvement_promotes() -> None:
    """The boundary with a margin (values exact in binary; catches `>=` turned into `>`)."""
    reg = FakeRegistry({"1": {"f1": 0.5}, "2": {"f1": 0.75}})
    reg.aliases.update(champion="1", challenger="2")
    assert run_gate(reg, "m", "f1", 0.25).promoted
    assert reg.aliases["champion"] == "2"


def test_a_hair_worse_does_not_promote() -> None:
    """Just below the champion stays out (catches the comparison turned around or dropped)."""
    reg = FakeRegistry({"1": {"f1": 0.5}, "2": {"f1": 0.4999}})
    reg.aliases.update(champion="1", challenger="2")
    decision = run_gate(reg, "m", "f1", 0.0)
    assert not decision.promoted and reg.aliases["champion"] == "1"
    assert decision.reason == "f1 0.4999 < champion's 0.5000 + 0"


def test_champion_without_the_metric_refuses_and_keeps_the_champion() -> None:
    """No comparison is possible: an error naming the version, not a silent promotion.

    Catches a missing metric read as a default value (0, -inf) instead of refusing.
    """
    reg = FakeRegistry({"1": {"roc_auc": 0.9}, "2": {"f1": 0.5}})
    reg.aliases.update(champion="1", challenger="2")
    with pytest.raises(RegistryError, match=r"^version 1 of m has no metric 'f1' on its run$"):
        run_gate(reg, "m", "f1", 0.0)
    assert reg.aliases["champion"] == "1"


def test_a_model_the_registry_does_not_know_has_no_challenger() -> None:
    """MLflow answers RESOURCE_DOES_NOT_EXIST for an unknown model: read as no alias."""
    with pytest.raises(RegistryError, match=r"^model 'other' has no 'challenger' version"):
        run_gate(FakeRegistry({}), "other", "f1", 0.0)


class RefusingRegistry(FakeRegistry):
    """Refuses reads of `refuse_read` and every alias change, as a registry without rights does."""

    def __init__(self, metrics: dict[str, dict[str, float]], refuse_read: str) -> None:
        super().__init__(metrics)
        self.refuse_read = refuse_read

    def get_model_version_by_alias(self, name: str, alias: str):  # type: ignore[no-untyped-def]
        if alias == self.refuse_read:
            raise MlflowException("no READ on m", error_code=PERMISSION_DENIED)
        return super().get_model_version_by_alias(name, alias)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        raise MlflowException("no MANAGE on m", error_code=PERMISSION_DENIED)


def test_a_refused_read_or_alias_change_is_one_line_naming_the_alias() -> None:
    reg = RefusingRegistry({"1": {"f1": 0.5}}, refuse_read="challenger")
    with pytest.raises(
        RegistryError, match=r"^registry refused reading m@challenger: no READ on m$"
    ):
        run_gate(reg, "m", "f1", 0.0)
    reg = RefusingRegistry({"1": {"f1": 0.5}}, refuse_read="")
    reg.aliases["challenger"] = "1"
    with pytest.raises(RegistryError, match=r"^could not set m@champion: no MANAGE on m$"):
        run_gate(reg, "m", "f1", 0.0)


def test_a_decision_reports_every_field() -> None:
    """The `--json` object: model, versions and both values, for a promotion and a no-op."""
    reg = FakeRegistry({"1": {"f1": 0.5}, "2": {"f1": 0.75}})
    reg.aliases.update(champion="1", challenger="2")
    assert run_gate(reg, "m", "f1", 0.0).as_json() == {
        "model_name": "m",
        "model_version": "2",
        "promoted": True,
        "reason": "f1 0.7500 >= champion's 0.5000 + 0",
        "metric": "f1",
        "challenger_value": 0.75,
        "champion_version": "1",
        "champion_value": 0.5,
    }
    assert run_gate(reg, "m", "f1", 0.0).as_json() == {
        "model_name": "m",
        "model_version": "2",
        "promoted": False,
        "reason": "challenger is already champion",
        "metric": "f1",
        "challenger_value": 0.75,
        "champion_version": "2",
        "champion_value": 0.75,
    }


@pytest.mark.parametrize(
    ("challenger", "margin", "promoted", "reason"),
    [
        (0.20, 0.0, True, "val_wape 0.2000 <= champion's 0.2500 - 0"),
        (0.25, 0.0, True, "val_wape 0.2500 <= champion's 0.2500 - 0"),  # a tie promotes
        (0.26, 0.0, False, "val_wape 0.2600 > champion's 0.2500 - 0"),
        (0.24, 0.02, False, "val_wape 0.2400 > champion's 0.2500 - 0.02"),
        (0.23, 0.02, True, "val_wape 0.2300 <= champion's 0.2500 - 0.02"),
    ],
)
def test_an_error_metric_promotes_the_lower_value(
    challenger: float, margin: float, promoted: bool, reason: str
) -> None:
    reg = FakeRegistry({"1": {"val_wape": 0.25}, "2": {"val_wape": challenger}})
    reg.aliases.update(champion="1", challenger="2")
    decision = run_gate(reg, "m", "val_wape", margin, greater_is_better=False)
    assert (decision.promoted, decision.reason) == (promoted, reason)
    assert reg.aliases["champion"] == ("2" if promoted else "1")
