"""Promotion of a model version from one environment's registry to another's, with integrity.

    promote(source, target, "fraud-classifier", "3", reporter, workdir)

1. Download the version's files from the source registry and write a sha256 manifest of them.
2. In the target registry, find or create the promotion run (tagged with a key made of the source
   environment, model, version and the manifest's digest) and upload every file it lacks.
3. Download the run's copy from the target and compare it with the manifest, file by file; a
   mismatch aborts, naming the file, and nothing is registered.
4. Register the version in one call, with lineage tags (source environment, run and version,
   data hashes, image digests, manifest digest).

Running it again finds the version by its key and reports it (creating nothing); a run that
crashed before registering is finished: missing files are uploaded, present ones are verified.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from mlplatform.errors import PromotionError, RegistryError
from mlplatform.registry.archive import manifest
from mlplatform.registry.client import Registry
from mlplatform.reporting import Reporter

__all__ = ["PromotionError", "PromotionResult", "promote"]

KEY_TAG = "mlp.promotion.key"
PROMOTED_BY_TAG = "mlp.promoted_by"
MODEL_DIR = "model"
# Test-only fault injection: the process dies right after copying, before verification and
# registration, as a crash or a kill would leave it.
FAULT_VARIABLE = "MLPLATFORM_FAULT_AFTER_COPY"


@dataclass(frozen=True)
class PromotionResult:
    """The `invoke promote --json` object."""

    model_name: str
    source_version: str
    target_version: str
    target_env: str
    verified_files: int
    created: bool
    files: int
    bytes: int
    manifest_sha256: str

    @property
    def verified(self) -> bool:
        """Every file of the manifest matched the copy in the target."""
        return self.verified_files == self.files

    def as_json(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return {**asdict(self), "verified": self.verified}


def _source_files(source: Registry, name: str, version: str, into: Path) -> tuple[Any, Any]:
    with source.client() as client:
        try:
            mv = client.get_model_version(name, version)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise RegistryError(
                f"model {name!r} has no version {version} in the {source.env_name} registry"
            ) from exc
        run = client.get_run(mv.run_id) if mv.run_id else None
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}",
            dst_path=str(into),
            tracking_uri=source.tracking_uri,
        )
    return mv, run


def _lineage(source: Registry, mv: Any, run: Any, digest: str, key: str) -> dict[str, str]:
    tags = {
        KEY_TAG: key,
        "mlp.manifest.sha256": digest,
        "mlp.source.env": source.env_name,
        "mlp.source.model": mv.name,
        "mlp.source.version": str(mv.version),
        "mlp.source.run_id": mv.run_id or "",
    }
    if run is not None:
        for tag, value in run.data.tags.items():
            if tag.startswith(("mlp.data.", "mlp.image", "mlp.git.", "mlp.lock.")):
                tags[tag] = value
    return tags


def _find_version(client: Any, name: str, key: str) -> Any | None:
    try:
        found = client.search_model_versions(f"name = '{name}' and tags.`{KEY_TAG}` = '{key}'")
    except MlflowException:
        return None
    return found[0] if found else None


def _promotion_run(client: Any, name: str, key: str, tags: dict[str, str]) -> str:
    experiment = f"promotions/{name}"
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    runs = client.search_runs([exp_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
    if runs:
        return str(runs[0].info.run_id)
    return str(
        client.create_run(
            exp_id, tags=tags, run_name=f"{name}-v{tags['mlp.source.version']}"
        ).info.run_id
    )


def _remote_files(client: Any, run_id: str, path: str = MODEL_DIR) -> set[str]:
    files: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            files |= _remote_files(client, run_id, item.path)
        else:
            files.add(item.path[len(MODEL_DIR) + 1 :])
    return files


def _verify(client: Any, run_id: str, expected: dict[str, str], scratch: Path) -> int:
    """Download the run's copy and compare it with `expected`; the number of files it matched."""
    copy = Path(client.download_artifacts(run_id, MODEL_DIR, str(scratch)))
    actual = manifest(copy)
    for path, digest in expected.items():
        if path not in actual:
            raise PromotionError(f"{path} is missing from the target copy; not registered")
        if actual[path] != digest:
            raise PromotionError(
                f"{path} in the target differs from the source (sha256 {actual[path][:12]}… != "
                f"{digest[:12]}…); not registered"
            )
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise PromotionError(
            f"{extra[0]} in the target is not in the source manifest; not registered"
        )
    # Counted from the downloaded copy, so a check that did not run cannot report a match.
    return len(actual)


def promote(
    source: Registry, target: Registry, name: str, version: str, reporter: Reporter
) -> PromotionResult:
    """Copy, verify and register one version; idempotent and resumable (see module doc)."""
    with tempfile.TemporaryDirectory(prefix="mlp-promote-") as tmp:
        work = Path(tmp)
        reporter.step(f"downloading {name} version {version} from {source.env_name}")
        mv, run = _source_files(source, name, version, work / "source")
        files = manifest(work / "source")
        size = sum((work / "source" / p).stat().st_size for p in files)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        (work / "manifest.json").write_text(json.dumps(files, indent=2, sort_keys=True))
        key = f"{source.env_name}/{name}/{version}/{digest[:16]}"
        reporter.done(
            f"manifest of {len(files)} files ({size / 2**20:.1f} MiB), sha256 {digest[:12]}…"
        )
        # Who promoted it: the login the copy is made with (a person, or the admin).
        tags = {**_lineage(source, mv, run, digest, key), PROMOTED_BY_TAG: target.username}
        result = functools.partial(
            PromotionResult,
            name,
            version,
            target_env=target.env_name,
            files=len(files),
            bytes=size,
            manifest_sha256=digest,
        )

        with target.client() as client:
            existing = _find_version(client, name, key)
            if existing is not None:
                reporter.step("verifying the existing copy")
                checked = _verify(client, existing.run_id, files, work / "check")
                reporter.done(f"already promoted: {target.env_name} version {existing.version}")
                return result(str(existing.version), verified_files=checked, created=False)
            run_id = _promotion_run(client, name, key, tags)
            present = _remote_files(client, run_id)
            missing = [p for p in files if p not in present]
            reporter.step(f"copying {len(missing)} of {len(files)} files to {target.env_name}")
            for rel in missing:
                parent = str(Path(MODEL_DIR, rel).parent)
                client.log_artifact(run_id, str(work / "source" / rel), parent)
            client.log_artifact(run_id, str(work / "manifest.json"), "promotion")
            reporter.done(f"copied {len(missing)} files ({len(files) - len(missing)} were there)")
            if os.environ.get(FAULT_VARIABLE) == "1":
                os._exit(75)
            reporter.step("verifying the copy against the manifest")
            checked = _verify(client, run_id, files, work / "check")
            reporter.done("every file matches the manifest")
            try:
                client.get_registered_model(name)
            except MlflowException:
                client.create_registered_model(name, tags={"mlp.promoted": "true"})
            artifact_uri = client.get_run(run_id).info.artifact_uri
            created = client.create_model_version(
                name, f"{artifact_uri}/{MODEL_DIR}", run_id=run_id, tags=tags
            )
            client.set_terminated(run_id)
            reporter.done(f"registered {name} version {created.version} in {target.env_name}")
        return result(str(created.version), verified_files=checked, created=True)
