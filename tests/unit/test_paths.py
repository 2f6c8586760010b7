"""The state folder's layout: where unix sockets go when the folder's path is deep."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mlplatform.errors import PlatformError
from mlplatform.paths import StatePaths

# sun_path's 107 bytes, less the ".<pid>" supervisord adds while it binds.
LONGEST_PID = ".4194304"


def test_a_short_state_folder_keeps_its_sockets_in_the_run_folder() -> None:
    paths = StatePaths(Path("/home/ana/churn/.mlplatform"))  # socket() reads no folder
    assert paths.socket("supervisor.sock") == paths.run / "supervisor.sock"


def test_a_deep_state_folder_puts_its_sockets_where_the_path_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pytest temporary tree with a three-digit run number once made supervisord's bind path
    108 bytes; the daemon then failed to start for pids of five digits or more."""
    deep = tmp_path / ("d" * 60) / "state" / "emulated" / "prod"
    paths = StatePaths(deep).ensure()
    sock = paths.socket("supervisor.sock")
    assert sock.parent == paths.short_run
    assert len(os.fsencode(f"{sock}{LONGEST_PID}")) <= 107
    assert (sock.parent.stat().st_mode & 0o777) == 0o700
    # Even when TMPDIR itself is deep, as it is in the kit's own tests.
    monkeypatch.setenv("TMPDIR", str(deep))
    tempfile.tempdir = None
    try:
        assert len(os.fsencode(f"{paths.socket('supervisor.sock')}{LONGEST_PID}")) <= 107
    finally:
        tempfile.tempdir = None
    # One folder per state folder: another deep stack gets its own.
    other = StatePaths(tmp_path / ("e" * 60) / "state" / "emulated" / "prod")
    assert other.socket("supervisor.sock").parent != sock.parent
    sock.parent.rmdir()


def test_a_short_socket_folder_others_can_enter_is_refused_in_one_line(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / ("d" * 90))
    paths.short_run.mkdir(mode=0o755)
    os.chmod(paths.short_run, 0o755)  # noqa: S103 - the folder others can enter, on purpose
    try:
        with pytest.raises(PlatformError, match="not a private folder of this user") as caught:
            paths.ensure()
        assert "\n" not in str(caught.value)
    finally:
        paths.short_run.rmdir()
