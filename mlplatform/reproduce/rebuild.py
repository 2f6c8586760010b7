"""`invoke reproduce`: rebuild a registered version from its lineage and compare it with the record.

In order, each step refusing in one line what would make the rebuild unfaithful:
the version's lineage (a commit, a clean tree, a lock, channel hashes, logged hyperparameters);
the source at that commit in a temporary worktree, whose fingerprint and lock must be the
recorded ones; each channel as it is in the bucket now, whose sha256 must be the recorded one.
Then the native runner trains the worktree's source with the recorded hyperparameters into the
experiment `<model>-reproductions`, registering nothing, and the rebuilt run is compared with
the recorded one: fingerprints, every metric, and both models' predictions on the validation
channel. The verdict is tagged on the rebuilt run and on the version (mlp.reproduced.*).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlp_training.contract import channel_sha256
from mlplatform.child_env import inherited_environment
from mlplatform.errors import ReproduceError
from mlplatform.local.aws_side import local_client
from mlplatform.reporting import Reporter
from mlplatform.reproduce.lineage import Lineage, read_lineage, refusal
from mlplatform.reproduce.verdict import (
    Item,
    Report,
    compare_fingerprints,
    compare_metrics,
    compare_predictions,
)
from mlplatform.reproduce.worktree import source_at_commit
from mlplatform.runners.compute import job_compute
from mlplatform.runners.datasets import download_channel
from mlplatform.runners.native import NativeRunner
from mlplatform.runners.request import TrainingRequest, job_name
from mlplatform.runners.train import registration_undo
from mlplatform.sources import Source, load_source
from mlplatform.sources.environment import source_python, source_variables
from mlplatform.target import Target

__all__ = ["EXPERIMENT_SUFFIX", "reproduce"]

EXPERIMENT_SUFFIX = "-reproductions"
_PREDICTIONS = Path(__file__).with_name("predictions.py")
# Both models predicting on one channel; far above what the examples take (seconds).
_PREDICTION_SECONDS = 1800
# Tags the rebuilt run must carry unchanged: the same packages, code and data went in.
_FINGERPRINTS = ("mlp.lock.sha256", "mlp.source.sha256")


def reproduce(
    target: Target, model: str | None, version: str, reporter: Reporter, runner: str = "native"
) -> Report:
    """Rebuild `model` version `version` of the target's registry natively and compare it."""
    if runner != "native":
        # The container runners would take the recorded image digest; not built yet.
        raise ReproduceError(f"reproduce rebuilds with the native runner so far, not {runner!r}")
    if not target.is_local:
        # The native runner trains against the local stack; a cloud version's rebuild would
        # read its bucket and registry (the container runners, with the recorded image digest).
        raise ReproduceError(
            f"reproduce rebuilds versions of the local environment so far, not {target.name!r}"
        )
    env = target.env
    name = env.model(model)
    registry = target.registry()
    with registry.client() as client:
        lineage = read_lineage(client, name, version)
    reason = refusal(lineage)
    if reason is not None:
        raise ReproduceError(reason)
    creds, endpoints = target.local_stack()
    s3 = local_client("s3", env, creds)
    with (
        source_at_commit(lineage.source, lineage.commit) as folder,
        tempfile.TemporaryDirectory(prefix="mlp-reproduce-data-") as data,
    ):
        source = _recorded_source(folder, lineage)
        reporter.done(f"{lineage.label}: source {lineage.source} at {lineage.commit[:12]}")
        _check_channels(lineage, s3, endpoints.bucket, target, Path(data))
        python = source_python(source, reporter)
        request = _request(target, name, source, lineage)
        log = target.paths.logs / "training" / f"{request.job_name}.log"
        # A job that registers a version anyway broke the contract: the version goes again.
        login = (endpoints.tracking_uri, creds.client_username, creds.client_password)
        undo = registration_undo(login, name)
        result = NativeRunner(endpoints, s3, python, undo).run(request, reporter, log)
        with registry.client() as client:
            rebuilt = client.get_run(result.run_id)
            items = compare_fingerprints(
                _fingerprints(lineage.tags), _fingerprints(rebuilt.data.tags)
            )
            tolerance = env.training.reproduce_tolerance
            items += compare_metrics(
                _histories(client, lineage.run_id, lineage.metrics),
                _histories(client, result.run_id, rebuilt.data.metrics),
                tolerance,
            )
            items.append(
                _predictions(lineage, result.run_id, source, python, Path(data), tolerance)
            )
            report = Report(lineage.model, lineage.version, result.run_id, tolerance, items)
            _record(client, report)
    return report


def _recorded_source(folder: Path, lineage: Lineage) -> Source:
    """The source at the commit, refused unless its files and lock are the ones recorded."""
    source = load_source(folder)
    recorded = lineage.tags["mlp.source.sha256"]
    if source.sha256() != recorded:
        raise ReproduceError(
            f"{lineage.source} at {lineage.commit[:12]} is not the source {lineage.label} recorded "
            f"(sha256 {source.sha256()[:12]}, recorded {recorded[:12]})"
        )
    if source.lock_sha256() != lineage.tags["mlp.lock.sha256"]:
        raise ReproduceError(
            f"the lock file at {lineage.commit[:12]} is not the one {lineage.label} recorded"
        )
    return source


def _check_channels(lineage: Lineage, s3: Any, bucket: str, target: Target, data: Path) -> None:
    """Download each recorded channel into data/<channel> and refuse one whose bytes changed."""
    for channel, recorded in sorted(lineage.channels.items()):
        folder = data / channel
        download_channel(s3, bucket, target.env, lineage.model, channel, folder)
        now = channel_sha256(folder)
        if now != recorded:
            raise ReproduceError(
                f"channel {channel!r} no longer matches the sha256 {lineage.label} recorded "
                f"({recorded[:12]}, now {now[:12]}): its data changed after training"
            )


def _request(target: Target, model: str, source: Source, lineage: Lineage) -> TrainingRequest:
    return TrainingRequest(
        target.env,
        model,
        source,
        lineage.hyperparameters,
        job_name(model, "-repro"),
        lineage.commit,
        False,
        job_compute(target.env, model, None),
        experiment=model + EXPERIMENT_SUFFIX,
        register=False,
    )


def _histories(client: Any, run_id: str, names: Iterable[str]) -> dict[str, list[float]]:
    """Each metric's points in step order (then time: a step logged twice keeps its order)."""
    histories = {}
    for name in names:
        points = sorted(
            client.get_metric_history(run_id, name), key=lambda m: (m.step, m.timestamp)
        )
        histories[name] = [float(m.value) for m in points]
    return histories


def _fingerprints(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k in _FINGERPRINTS or k.startswith("mlp.data.")}


def _predictions(
    lineage: Lineage,
    rebuilt_run: str,
    source: Source,
    python: Path,
    data: Path,
    tolerance: float,
) -> Item:
    """Both models' predictions on the validation channel (else the last one), compared.

    Called inside `registry.client()`, whose login MLflow's downloads use.
    """
    import mlflow.artifacts

    channel = "validation" if "validation" in source.channels else source.channels[-1]
    with tempfile.TemporaryDirectory(prefix="mlp-reproduce-models-") as tmp:
        recorded = mlflow.artifacts.download_artifacts(
            f"models:/{lineage.model}/{lineage.version}", dst_path=f"{tmp}/recorded"
        )
        rebuilt = mlflow.artifacts.download_artifacts(
            f"runs:/{rebuilt_run}/model", dst_path=f"{tmp}/rebuilt"
        )
        try:
            done = subprocess.run(
                [str(python), str(_PREDICTIONS), recorded, rebuilt, str(data / channel)],
                env={**inherited_environment(), **source_variables(source)},
                capture_output=True,
                text=True,
                check=False,
                timeout=_PREDICTION_SECONDS,
            )
        except subprocess.TimeoutExpired:
            raise ReproduceError(
                f"comparing the predictions on {channel} took over {_PREDICTION_SECONDS} s"
            ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise ReproduceError(f"comparing the predictions failed: {last[:300]}")
    return compare_predictions(json.loads(done.stdout.strip().splitlines()[-1]), channel, tolerance)


def _record(client: Any, report: Report) -> None:
    """The verdict on the rebuilt run (with the report) and on the version the registry shows."""
    run, verdict = report.rebuilt_run_id, report.verdict
    client.set_tag(run, "mlp.reproduces", f"{report.model}/{report.version}")
    client.set_tag(run, "mlp.reproduce.verdict", verdict)
    client.log_dict(run, report.as_json(), "reproduction.json")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    for key, value in (("verdict", verdict), ("at", when), ("run", run)):
        client.set_model_version_tag(report.model, report.version, f"mlp.reproduced.{key}", value)
