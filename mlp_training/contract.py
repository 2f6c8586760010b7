"""SageMaker's training-container contract: where inputs, config and outputs live.

Paths come from the SM_* variables when set (script mode, or the kit's native runner) and fall
back to SageMaker's fixed /opt/ml layout (a bare `train` container).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Contract", "channel_sha256", "contract_from_env"]


@dataclass(frozen=True)
class Contract:
    """The job's folders."""

    prefix: Path
    model_dir: Path
    output_data_dir: Path
    channels: dict[str, Path]

    @property
    def config_dir(self) -> Path:
        """input/config: hyperparameters.json, inputdataconfig.json, resourceconfig.json."""
        return self.prefix / "input" / "config"

    @property
    def checkpoint_dir(self) -> Path:
        """checkpoints/: SageMaker's CheckpointConfig.LocalPath (/opt/ml/checkpoints).

        SageMaker syncs it with the job's S3 checkpoint prefix: a restarted spot job finds there
        what it saved.
        """
        return self.prefix / "checkpoints"

    @property
    def failure_file(self) -> Path:
        """Where a failed job writes its reason (SageMaker shows it as FailureReason)."""
        return self.prefix / "output" / "failure"

    def write_failure(self, message: str) -> None:
        """Record why the job failed, for the runner (or SageMaker) to report."""
        self.failure_file.parent.mkdir(parents=True, exist_ok=True)
        self.failure_file.write_text(message[:1024], encoding="utf-8")


def contract_from_env(env: dict[str, str] | None = None) -> Contract:
    """The contract as the environment describes it."""
    env = dict(os.environ if env is None else env)
    prefix = Path(env.get("SM_PREFIX", "/opt/ml"))
    channels: dict[str, Path] = {}
    declared = env.get("SM_CHANNELS")
    names = json.loads(declared) if declared else []
    config = prefix / "input" / "config" / "inputdataconfig.json"
    if not names and config.exists():
        names = sorted(json.loads(config.read_text(encoding="utf-8")))
    for name in names:
        channels[name] = Path(
            env.get(f"SM_CHANNEL_{name.upper()}", prefix / "input" / "data" / name)
        )
    return Contract(
        prefix=prefix,
        model_dir=Path(env.get("SM_MODEL_DIR", prefix / "model")),
        output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", prefix / "output" / "data")),
        channels=channels,
    )


def channel_sha256(folder: Path) -> str:
    """A digest of a channel's content: every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
