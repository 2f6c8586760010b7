"""The promotion gate: `champion` moves to the challenger only when its metric is as good.

As good: at least as high, or as low for an error metric, by the configured margin.

This is the only code that sets `champion`; training only ever sets `challenger`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlflow.exceptions import MlflowException

from mlplatform.errors import RegistryError

__all__ = ["CHALLENGER", "CHAMPION", "CHAMPION_SET_BY_TAG", "GateDecision", "run_gate"]

CHALLENGER = "challenger"
CHAMPION = "champion"
# On the version made champion: who made it (the login of the gate's client).
CHAMPION_SET_BY_TAG = "mlp.champion.set_by"


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided and why (the `invoke champion --json` object)."""

    model_name: str
    model_version: str
    promoted: bool
    reason: str
    metric: str
    challenger_value: float
    champion_version: str | None
    champion_value: float | None

    def as_json(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return asdict(self)


def _alias(client: Any, name: str, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryError(f"registry refused reading {name}@{alias}: {exc.message}") from exc


def _metric(client: Any, version: Any, metric: str) -> float:
    run = client.get_run(version.run_id)
    if metric not in run.data.metrics:
        raise RegistryError(
            f"version {version.version} of {version.name} has no metric {metric!r} on its run"
        )
    return float(run.data.metrics[metric])


def run_gate(
    client: Any,
    name: str,
    metric: str,
    min_improvement: float,
    greater_is_better: bool = True,
    actor: str | None = None,
) -> GateDecision:
    """Compare challenger with champion on `metric` and move `champion` if it is as good.

    `actor`, the user the client logs in as, is recorded on the version it makes champion.

    Higher is better unless `greater_is_better` is false (an error such as RMSE); either way the
    challenger must beat the champion by `min_improvement`, and a tie with no margin promotes.
    """
    challenger = _alias(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"model {name!r} has no {CHALLENGER!r} version; run `invoke train`")
    value = _metric(client, challenger, metric)
    champion = _alias(client, name, CHAMPION)
    version = str(challenger.version)
    if champion is None:
        promoted, reason, champ_value = True, "no champion yet", None
    elif str(champion.version) == str(challenger.version):
        return GateDecision(
            name,
            version,
            promoted=False,
            reason="challenger is already champion",
            metric=metric,
            challenger_value=value,
            champion_version=str(champion.version),
            champion_value=value,
        )
    else:
        champ_value = _metric(client, champion, metric)
        if greater_is_better:
            promoted = value >= champ_value + min_improvement
            relation, margin = (">=" if promoted else "<"), f"+ {min_improvement:g}"
        else:
            promoted = value <= champ_value - min_improvement
            relation, margin = ("<=" if promoted else ">"), f"- {min_improvement:g}"
        reason = f"{metric} {value:.4f} {relation} champion's {champ_value:.4f} {margin}"
    if promoted:
        try:
            client.set_registered_model_alias(name, CHAMPION, challenger.version)
            if actor is not None:
                client.set_model_version_tag(name, challenger.version, CHAMPION_SET_BY_TAG, actor)
        except MlflowException as exc:
            raise RegistryError(f"could not set {name}@{CHAMPION}: {exc.message}") from exc
    return GateDecision(
        name,
        version,
        promoted=promoted,
        reason=reason,
        metric=metric,
        challenger_value=value,
        champion_version=None if champion is None else str(champion.version),
        champion_value=champ_value,
    )
