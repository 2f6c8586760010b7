"""Reproducible archives and manifests: the same files always give the same bytes and digests.

model.tar.gz is built with sorted entries, zeroed times and owners and a fixed gzip header, so the
archive a local endpoint serves and the one uploaded for a SageMaker endpoint can be compared by
sha256 alone.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path

__all__ = ["file_sha256", "make_targz", "manifest"]


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under folder, sorted by path."""
    return {
        str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }


def make_targz(folder: Path, out: Path) -> str:
    """Pack folder's contents into out (deterministically); return the archive's sha256."""
    with (
        open(out, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(folder.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return file_sha256(out)
