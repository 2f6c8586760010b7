"""model.tar.gz is a function of the model's files alone: same files, same bytes (no server).

The archive `invoke serve` runs and the one a SageMaker endpoint is given are compared by sha256
only, so nothing else about the files (times, owners, modes, the order they were written in) and
nothing about the packing (where the archive goes, when) may reach its bytes.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlplatform.registry.archive import make_targz
from mlplatform.registry.client import authenticated_client
from mlplatform.registry.packaging import package_version

FILES = {
    "MLmodel": b"flavors: {}\n",
    "model.pkl": b"weights\n",
    "artifacts/notes.txt": b"notes\n",
    "artifacts/z/last.bin": b"\x00\x01",
    "code/a.py": b"print('a')\n",
}


def write_tree(root: Path, order: list[str], mtime: float, file_mode: int) -> Path:
    """FILES under root, created in `order`, with every file and folder at `mtime`."""
    for rel in order:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILES[rel])
        path.chmod(file_mode)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime))
    return root


def members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return tar.getmembers()


def test_same_folder_packs_to_the_same_bytes_wherever_the_archive_goes(tmp_path: Path) -> None:
    """Catches the archive's own name or time in the gzip header (`filename=""`, `mtime=0`)."""
    folder = write_tree(tmp_path / "model", sorted(FILES), 1_700_000_000.5, 0o644)
    (tmp_path / "elsewhere").mkdir()
    first = make_targz(folder, tmp_path / "model.tar.gz")
    second = make_targz(folder, tmp_path / "elsewhere" / "other-name.tar.gz")
    one = (tmp_path / "model.tar.gz").read_bytes()
    assert one == (tmp_path / "elsewhere" / "other-name.tar.gz").read_bytes()
    assert first == second == hashlib.sha256(one).hexdigest()
    # gzip header: no FNAME flag (bit 3) and a zero modification time (bytes 4-7).
    assert one[3] & 0x08 == 0 and one[4:8] == b"\0\0\0\0"


def test_file_times_modes_and_write_order_do_not_reach_the_bytes(tmp_path: Path) -> None:
    """Catches packing real file times or real modes.

    It catches unsorted entries only where the file system lists a folder in creation order
    (tmpfs); ext4 lists by name hash, the same for both copies, so the next test guards order.
    """
    # Two copies of one model as two downloads would leave them: written in opposite orders,
    # at different times, one with a stricter umask.
    a = write_tree(tmp_path / "a", sorted(FILES), 1_000_000_000, 0o644)
    b = write_tree(tmp_path / "b", sorted(FILES, reverse=True), 1_700_000_000.25, 0o600)
    assert make_targz(a, tmp_path / "a.tar.gz") == make_targz(b, tmp_path / "b.tar.gz")


def test_entries_are_sorted_with_zero_times_and_no_owner(tmp_path: Path) -> None:
    """Catches real owners (uid, gid, names), real times and unsorted entries in the tar."""
    folder = write_tree(tmp_path / "model", sorted(FILES, reverse=True), 1_700_000_000, 0o640)
    make_targz(folder, tmp_path / "m.tar.gz")
    entries = members(tmp_path / "m.tar.gz")
    names = [m.name for m in entries]
    assert names == sorted(names) and set(FILES) <= set(names)
    for m in entries:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", ""), m.name
        assert m.mode == (0o755 if m.isdir() else 0o644), m.name
        assert not m.pax_headers, (m.name, m.pax_headers)


def test_the_archive_holds_exactly_the_files(tmp_path: Path) -> None:
    """Normalising must not lose content: every file comes back with its bytes, nothing more."""
    folder = write_tree(tmp_path / "model", sorted(FILES), 1_700_000_000, 0o644)
    make_targz(folder, tmp_path / "m.tar.gz")
    with tarfile.open(tmp_path / "m.tar.gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert files == FILES


def test_a_registry_version_packs_to_the_same_bytes_twice_and_in_any_registry(
    tmp_path: Path, sqlite_registry: Callable[[str], str], register_files: Any
) -> None:
    """`package_version`, as `invoke serve` and `deploy-endpoint` call it, on two registries.

    The same model is version 1 in one registry and version 2 in the other. Catches real file
    times (each download writes the files anew) and the registry's own metadata file
    (`registered_model_meta`, which names the version number) left in the archive.
    """
    local, prod = sqlite_registry("local"), sqlite_registry("prod")
    register_files(prod, "m", {"MLmodel": b"an earlier version\n"})
    versions = {local: register_files(local, "m", FILES), prod: register_files(prod, "m", FILES)}
    assert versions == {local: "1", prod: "2"}

    packed = []
    for i, (uri, version) in enumerate([*versions.items(), *versions.items()]):
        # As `invoke serve` and `deploy-endpoint` call it: inside the registry's client block,
        # which points MLflow's models:/ resolution at that registry.
        with authenticated_client(uri, "admin", "unused"):
            packed.append(package_version(uri, "m", version, tmp_path / f"pack-{i}"))
    assert len({p.sha256 for p in packed}) == 1
    assert len({p.archive.read_bytes() for p in packed}) == 1
    assert sorted(m.name for m in members(packed[0].archive) if m.isfile()) == sorted(FILES)
