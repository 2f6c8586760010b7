"""`invoke doctor`: each check's verdict and line, without servers (the machine's facts faked).

The run on this machine itself is the last test: the task prints one line per check and exits 0
while nothing fails.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplatform import doctor
from mlplatform.doctor import FAIL, OK, WARN, Check, Diagnosis, diagnose
from mlplatform.errors import EngineMissingError, PlatformError
from mlplatform.local.database_admin import DatabaseServer
from mlplatform.paths import StatePaths
from mlplatform.target import Target, resolve_targets
from tests.cli import kit


@pytest.fixture
def targets(tmp_path: Path) -> tuple[Target, Target]:
    local, prod = resolve_targets("local", "prod", paths=StatePaths(tmp_path / "state"))
    return local, prod


def by_name(report: Diagnosis) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


def test_only_a_failed_check_makes_the_report_fail() -> None:
    assert Diagnosis((Check("a", OK, ""), Check("b", WARN, ""))).ok
    failed = Diagnosis((Check("a", OK, ""), Check("ports", FAIL, "taken")))
    assert not failed.ok and failed.as_json()["ok"] is False


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_port_taken_by_another_process_fails_and_names_port_and_service(
    targets: tuple[Target, Target], taken_port: int
) -> None:
    local, prod = targets
    ports = local.env.ports.model_copy(update={"mlflow": taken_port})
    busy = Target(local.env.model_copy(update={"ports": ports}), local.paths)
    check = by_name(diagnose(busy, [prod]))["ports"]
    assert check.status == FAIL
    assert check.detail.startswith(f"taken by another process: {taken_port} (mlflow);")
    assert check.detail.endswith("change [local.ports] in environments.toml")


def test_no_database_server_warns_that_up_falls_back_to_sqlite(
    targets: tuple[Target, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "find_server", lambda engine: None)
    check = by_name(diagnose(*targets[:1], [targets[1]]))["database server"]
    assert check.status == WARN and "falls back to SQLite" in check.detail
    assert "apt-get install -y mariadb-server" in check.detail


def test_another_engine_than_configured_is_named(
    targets: tuple[Target, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = DatabaseServer("mariadb", "10.11.19", "/usr/sbin/mariadbd")
    monkeypatch.setattr(doctor, "find_server", lambda engine: server)
    check = by_name(diagnose(targets[0], [targets[1]]))["database server"]
    assert (check.status, check.detail) == (
        WARN,
        "mariadb 10.11.19 (/usr/sbin/mariadbd), while environments.toml says mysql 8.0: "
        "`invoke parity` reports the difference",
    )


def test_no_container_engine_is_a_warning_with_what_to_install(
    targets: tuple[Target, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise EngineMissingError("no container engine answers")

    monkeypatch.setattr(doctor, "find_engine", missing)
    check = by_name(diagnose(targets[0], [targets[1]]))["container engine"]
    assert check.status == WARN and "apt-get install -y podman runc" in check.detail


def test_little_disk_fails_and_some_disk_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for free_gib, status in ((1, FAIL), (5, WARN), (50, OK)):
        usage = shutil._ntuple_diskusage(0, 0, free_gib * 2**30)  # type: ignore[attr-defined]
        monkeypatch.setattr(doctor.shutil, "disk_usage", lambda _path, u=usage: u)
        assert doctor._disk(tmp_path / "state").status == status


def test_up_stops_with_the_doctors_line_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, targets: tuple[Target, Target]
) -> None:
    local, _ = targets
    doctor.require_ready(local)  # this machine has the tools and the disk
    usage = shutil._ntuple_diskusage(0, 0, 2**29)  # type: ignore[attr-defined]
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda _path: usage)
    with pytest.raises(PlatformError) as caught:
        doctor.require_ready(local)
    assert str(caught.value).startswith("disk: 0.5 GiB free at ")
    assert str(caught.value).endswith(
        ": the stack needs at least 2 GiB (`./kit doctor` checks the rest)"
    )
    assert not local.paths.root.exists()


def test_aws_credentials_are_named_by_their_source_never_their_value(
    targets: tuple[Target, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    # Made-up values, not shaped like real keys: the check is that neither is printed.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id-never-printed")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed")
    report = diagnose(targets[0], [targets[1]])
    check = by_name(report)["aws (prod)"]
    assert check.status == OK and check.detail.startswith("credentials from env, region eu-west-1")
    text = json.dumps(report.as_json())
    assert "test-secret-never-printed" not in text and "test-key-id-never-printed" not in text

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    check = by_name(diagnose(targets[0], [targets[1]]))["aws (prod)"]
    assert check.status == WARN
    assert "need them for an emulator at http://127.0.0.1:4566" in check.detail


def test_doctor_on_this_machine_prints_a_line_per_check(tmp_path: Path) -> None:
    result = kit("doctor", "--json", env={"MLPLATFORM_HOME": str(tmp_path / "state")})
    report = json.loads(result.stdout)
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["python", "kit tools", "node"] and names[-1] == "local stack"
    assert result.returncode == (0 if report["ok"] else 1)
    assert all(c["status"] in (OK, WARN, FAIL) and c["detail"] for c in report["checks"])
