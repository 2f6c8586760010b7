"""`invoke parity`'s verdicts, without servers: how rows are judged and reported.

The rows read from real servers (the local stack, an emulated prod deployed by the deploy chain)
are tests/integration/test_deploy.py::test_parity_is_clean_after_a_release_and_names_each_drift.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlplatform.errors import PlatformError
from mlplatform.paths import StatePaths
from mlplatform.release.parity import (
    DRIFT,
    SAME,
    UNKNOWN,
    Parity,
    Row,
    _row,
    _same_database,
    _same_minor,
    _Unreadable,
    built_digest,
    parity,
)
from mlplatform.target import resolve_targets
from tests.oci_images import write_archive


def unreadable() -> str:
    raise _Unreadable("no endpoint mlp-prod-fraud-classifier")


def test_a_row_is_same_only_when_both_sides_agree() -> None:
    assert _row("x", lambda: "1", lambda: "1").status == SAME
    assert _row("x", lambda: "1", lambda: "2") == Row("x", "1", "2", DRIFT)


def test_a_side_that_cannot_be_read_is_unknown_with_its_reason_never_same() -> None:
    row = _row("image serving", lambda: "sha256:1", unreadable)
    assert row == Row(
        "image serving", "sha256:1", "unknown: no endpoint mlp-prod-fraud-classifier", UNKNOWN
    )

    def fails() -> str:
        raise PlatformError("the local stack is not up; run `invoke up`\nmore")

    assert (
        _row("x", fails, lambda: "1").local == "unknown: the local stack is not up; run `invoke up`"
    )


@pytest.mark.parametrize(
    ("local", "remote", "same"),
    [
        ("mariadb 10.11.6", "mariadb 10.11.13", True),  # patch levels differ: RDS patches too
        ("mysql 8.0.36", "mysql 8.0.40", True),
        ("mariadb 10.11.6", "mysql 8.0.40", False),  # the engine differs
        ("mysql 8.4.2", "mysql 8.0.40", False),  # the minor version differs
        ("sqlite (the fallback: no MySQL-protocol server here)", "mysql 8.0.40", False),
    ],
)
def test_databases_agree_on_engine_and_major_minor(local: str, remote: str, same: bool) -> None:
    assert _same_database(local, remote) is same


def test_python_agrees_on_major_minor() -> None:
    assert _same_minor("3.11.7", "3.11.2") and not _same_minor("3.12.1", "3.11.2")


def test_the_report_is_clean_only_when_every_row_is_same() -> None:
    rows = (Row("a", "1", "1", SAME), Row("b", "1", "1", SAME))
    assert Parity("prod", rows).clean
    for status in (DRIFT, UNKNOWN):
        report = Parity("prod", (*rows, Row("c", "1", "2", status)))
        assert not report.clean
        assert report.as_json()["clean"] is False
        assert report.as_json()["rows"][-1] == {
            "item": "c",
            "local": "1",
            "remote": "2",
            "status": status,
        }


def test_a_built_digest_comes_from_its_sidecar_unless_the_archive_is_newer(tmp_path: Path) -> None:
    archive = tmp_path / "serving.oci.tar"
    digest = write_archive(archive, {"scoring_server/__init__.py": b""})
    assert built_digest(archive) == digest  # no sidecar: read from the archive
    sidecar = tmp_path / "serving.oci.tar.json"
    sidecar.write_text('{"digest": "sha256:' + "a" * 64 + '", "content": "1"}\n')
    assert built_digest(archive) == "sha256:" + "a" * 64
    sidecar.write_text("not json")
    assert built_digest(archive) == digest  # unreadable sidecar: the archive says
    sidecar.write_text('{"digest": "sha256:' + "a" * 64 + '", "content": "1"}\n')
    # An archive saved after its sidecar (by hand, or an interrupted build): the archive wins.
    stamp = sidecar.stat().st_mtime
    os.utime(archive, (stamp + 10, stamp + 10))
    assert built_digest(archive) == digest


def test_parity_compares_with_a_cloud_environment_only(tmp_path: Path) -> None:
    local, also_local = resolve_targets("local", "local", paths=StatePaths(tmp_path))
    with pytest.raises(PlatformError, match="parity compares the local stack with a cloud"):
        parity(local, also_local)
