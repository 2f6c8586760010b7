"""Small but complete OCI images for tests: a config, gzip layers of real files, a manifest.

    digest = write_layout(tmp / "layout", {"app/hello.txt": b"hi"})
    digest = write_archive(tmp / "image.tar", {"app/hello.txt": b"hi"})

The layout is what `podman save --format oci-archive` and `docker save` write (index.json,
oci-layout, blobs/sha256/...; gzip layers by default, as podman writes them; plain tar layers
with compress=False, as docker writes them), only with a few bytes instead of a Python runtime.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPES = {
    True: "application/vnd.oci.image.layer.v1.tar+gzip",
    False: "application/vnd.oci.image.layer.v1.tar",
}


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(files: dict[str, bytes], compress: bool) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    return (gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()), diff_id


def write_layout(
    root: Path,
    *layers: dict[str, bytes],
    compress: bool = True,
    architecture: str = "amd64",
    labels: dict[str, str] | None = None,
) -> str:
    """An OCI image layout with one layer per mapping; returns the manifest digest."""
    root.mkdir(parents=True, exist_ok=True)
    blobs = [_layer(files, compress) for files in layers]
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["serve"], **({"Labels": labels} if labels else {})},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in blobs]},
    }
    config_desc = _blob(root, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": LAYER_TYPES[compress], **_blob(root, data)} for data, _ in blobs],
    }
    manifest_desc = _blob(root, json.dumps(manifest).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(
        json.dumps(
            {"schemaVersion": 2, "manifests": [{"mediaType": MANIFEST_TYPE, **manifest_desc}]}
        )
    )
    return str(manifest_desc["digest"])


def write_archive(
    path: Path,
    *layers: dict[str, bytes],
    compress: bool = True,
    labels: dict[str, str] | None = None,
) -> str:
    """The same image as an OCI archive (a tar of the layout); returns the manifest digest."""
    layout = path.with_suffix(".layout")
    digest = write_layout(layout, *layers, compress=compress, labels=labels)
    with tarfile.open(path, "w") as tar:
        for item in sorted(layout.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(layout)), recursive=False)
    return digest
