"""A model's training channels: made by its source's data generator, uploaded to the bucket.

`invoke data` runs the generator source.toml names (`python data.py OUT_DIR [arguments]`) in the
source's own environment, then uploads OUT_DIR/<channel>/ for every channel the source declares
under <dataset_prefix>/<model>/<channel>/.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlplatform.child_env import inherited_environment
from mlplatform.config import Environment
from mlplatform.errors import TrainingError
from mlplatform.reporting import Reporter
from mlplatform.runners.request import channel_prefix
from mlplatform.sources import Source, model_source
from mlplatform.sources.environment import run_checked, source_python, source_variables

__all__ = ["Upload", "download_channel", "generate_channels", "upload_channels"]


@dataclass(frozen=True)
class Upload:
    """One uploaded channel file."""

    channel: str
    uri: str
    sha256: str
    changed: bool


def generate_channels(
    source: Source, out_dir: Path, arguments: list[str], reporter: Reporter
) -> dict[str, list[Path]]:
    """Run the source's data generator into out_dir; channel -> its files (sorted)."""
    if source.data is None:
        raise TrainingError(
            f"{source.label} names no data generator (data = ... in source.toml); "
            "upload its channels yourself"
        )
    python = source_python(source, reporter)
    run_checked(
        [str(python), str(source.root / source.data), str(out_dir), *arguments],
        {**inherited_environment(), **source_variables(source)},
        f"{source.label}/{source.data}",
        TrainingError,
        timeout=3600,
        cwd=out_dir,
    )
    files = {}
    for channel in source.channels:
        found = sorted(p for p in (out_dir / channel).rglob("*") if p.is_file())
        if not found:
            raise TrainingError(
                f"{source.label}/{source.data} wrote no files for channel {channel!r} "
                f"(expected OUT_DIR/{channel}/...)"
            )
        files[channel] = found
    return files


def upload_channels(
    env: Environment, model: str | None, s3: Any, bucket: str, reporter: Reporter
) -> list[Upload]:
    """Generate a model's channels and upload them; an object whose sha256 matches stays.

    `model` None is the environment's only model.
    """
    name = env.model(model)
    source = model_source(env, name)
    uploads = []
    with tempfile.TemporaryDirectory(prefix="mlp-data-") as tmp:
        out = Path(tmp)
        generated = generate_channels(source, out, env.models[name].data_arguments, reporter)
        for channel, paths in generated.items():
            prefix = channel_prefix(env, name, channel)
            keys = set()
            for path in paths:
                body = path.read_bytes()
                digest = hashlib.sha256(body).hexdigest()
                key = prefix + path.relative_to(out / channel).as_posix()
                keys.add(key)
                changed = _put(s3, bucket, key, body, digest, source.content_type)
                uploads.append(Upload(channel, f"s3://{bucket}/{key}", digest, changed))
            _remove_others(s3, bucket, prefix, keys)
    return uploads


def _remove_others(s3: Any, bucket: str, prefix: str, keep: set[str]) -> None:
    """Delete what an earlier generation left under a channel's prefix: a job reads it all."""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"] not in keep:
                    s3.delete_object(Bucket=bucket, Key=obj["Key"])
    except botocore.exceptions.ClientError as exc:
        raise TrainingError(f"cannot tidy s3://{bucket}/{prefix}: {exc}") from exc


def _put(s3: Any, bucket: str, key: str, body: bytes, digest: str, content_type: str) -> bool:
    """Upload unless the object there has this sha256; whether it uploaded."""
    try:
        current = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except botocore.exceptions.ClientError:
        current = {}
    if current.get("sha256") == digest:
        return False
    try:
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata={"sha256": digest}
        )
    except botocore.exceptions.ClientError as exc:
        raise TrainingError(f"cannot upload s3://{bucket}/{key}: {exc}") from exc
    return True


def download_channel(
    s3: Any, bucket: str, env: Environment, model: str, channel: str, target: Path
) -> int:
    """Download one channel of a model's data into `target`; the number of files.

    TrainingError when the bucket refuses or the channel is empty (with what to run).
    """
    prefix = channel_prefix(env, model, channel)
    count = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                dest = target / obj["Key"][len(prefix) :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(dest))
                count += 1
    except botocore.exceptions.ClientError as exc:
        raise TrainingError(f"cannot read channel {channel!r}: {exc}") from exc
    if count == 0:
        raise TrainingError(
            f"input channel {channel!r} is empty at s3://{bucket}/{prefix}; "
            f"run `invoke data --model {model}` first"
        )
    return count
