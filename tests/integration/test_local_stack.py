"""The local stack end to end, through the same tasks a user runs.

Tests taking `runtime_stack` run on the native stack and, in the container lane, on the compose
runtime's (tests/integration/conftest.py); the others are about the native runtime's processes.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pymysql
import pytest
from cryptography import x509
from mlflow.tracking import MlflowClient

from mlplatform.local.database_admin import root_connection
from mlplatform.local.database_tls import SERVER_DAYS, ensure_tls, tls_files
from mlplatform.paths import StatePaths
from tests.cli import entrypoint
from tests.integration.conftest import Stack, group_alive, write_config

pytestmark = pytest.mark.integration


def client_of(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """An MLflow client logged in with what `invoke env` gives a shell."""
    env = stack.client_env()
    # As `invoke env` sets them: downloads through the server, not to presigned URLs of an S3
    # endpoint the host may not reach (a container name under compose).
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    # Fail fast while the server is down instead of retrying for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])


@pytest.fixture
def mlflow_client(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    return client_of(stack, monkeypatch)


def bucket_keys(stack: Stack) -> list[str]:
    s3 = stack.s3()
    bucket = "mlp-local-artifacts-123456789012-us-east-1"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_status_reports_four_healthy_services(runtime_stack: Stack) -> None:
    stack = runtime_stack
    status = stack.status()
    assert status["runtime"] == stack.runtime
    assert set(status["services"]) == {"database", "s3", "aws", "mlflow"}
    for name, service in status["services"].items():
        assert service["healthy"] is True, name
    assert status["services"]["mlflow"]["url"] == f"http://127.0.0.1:{stack.ports['mlflow']}"


def test_second_up_changes_nothing(stack: Stack) -> None:
    before = stack.status()
    result = stack.kit("up")
    assert result.returncode == 0
    assert result.stderr.count("already up") == 4
    assert f"MLflow UI: http://127.0.0.1:{stack.ports['mlflow']}" in result.stdout
    after = stack.status()
    assert {n: s["pid"] for n, s in after["services"].items()} == {
        n: s["pid"] for n, s in before["services"].items()
    }


def test_unauthenticated_request_is_refused(runtime_stack: Stack) -> None:
    port = runtime_stack.ports["mlflow"]
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401


def test_secrets_are_files_0600_and_never_on_a_command_line(stack: Stack) -> None:
    state = stack.home / "state"
    secrets = state / "secrets"
    for folder in (state, secrets, state / "run", secrets / "container"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in (p for p in secrets.iterdir() if p.is_file()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # The one copy containers read, world-readable only inside the 0700 folder above.
    shared = secrets / "container" / "aws-credentials"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o444
    assert {p.name for p in (secrets / "container").iterdir()} == {"aws-credentials"}
    env = stack.client_env()
    values = [env["MLFLOW_TRACKING_PASSWORD"], env["AWS_SECRET_ACCESS_KEY"]]
    values += [(secrets / name).read_text() for name in ("db-password", "db-root-password")]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        for value in values:
            assert value not in cmdline, f"a secret is on the command line of pid {pid}"
    for log in (p for p in (state / "logs").rglob("*") if p.is_file()):
        text = log.read_text(errors="replace")
        for value in values:
            assert value not in text, f"a secret is in {log.name}"


def test_env_output_is_sourceable_by_a_shell(runtime_stack: Stack) -> None:
    stack = runtime_stack
    script = (
        f'eval "$({sys.executable} -m invoke env)"; echo "$MLFLOW_TRACKING_URI $AWS_DEFAULT_REGION"'
    )
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **stack.env},
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.strip() == f"http://127.0.0.1:{stack.ports['mlflow']} us-east-1"


def test_logged_data_survives_down_and_up(
    runtime_stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack = runtime_stack
    mlflow_client = client_of(stack, monkeypatch)
    exp = mlflow_client.create_experiment("persistence")
    run = mlflow_client.create_run(exp)
    rid = run.info.run_id
    mlflow_client.log_param(rid, "lr", "0.01")
    for step in range(5):
        mlflow_client.log_metric(rid, "loss", 1.0 / (step + 1), step=step)
    artifact = tmp_path / "report.txt"
    artifact.write_text("precision=0.93\n")
    mlflow_client.log_artifact(rid, str(artifact))
    mlflow_client.set_terminated(rid)
    assert f"mlflow-artifacts/{exp}/{rid}/artifacts/report.txt" in bucket_keys(stack)

    groups = stack.process_groups()  # native: every service's; compose reports no pids
    stack.kit("down")
    assert not any(group_alive(g) for g in groups), "a process group survived down"
    stopped = stack.status()
    assert not any(s["healthy"] for s in stopped["services"].values())
    stack.up()

    again = mlflow_client.get_run(rid)
    assert again.data.params == {"lr": "0.01"}
    assert [m.step for m in mlflow_client.get_metric_history(rid, "loss")] == list(range(5))
    restored = mlflow_client.download_artifacts(rid, "report.txt", str(tmp_path / "dl"))
    assert Path(restored).read_text() == "precision=0.93\n"


class MetricLogger:
    """Logs a metric step by step in a thread until a call fails; keeps what was acknowledged."""

    def __init__(
        self, client: MlflowClient, experiment: str, acknowledged_before_kill: int
    ) -> None:
        self.client = client
        self.run_id = client.create_run(client.create_experiment(experiment)).info.run_id
        self.acknowledged: list[int] = []
        self.failed: list[int] = []
        self._started = threading.Event()
        self._after = acknowledged_before_kill
        self._worker = threading.Thread(target=self._loop)
        self._worker.start()
        assert self._started.wait(60), "logging never got going"

    def _loop(self) -> None:
        for step in range(100000):
            try:
                self.client.log_metric(self.run_id, "m", float(step), step=step)
            except Exception:
                self.failed.append(step)
                return
            self.acknowledged.append(step)
            if step == self._after:
                self._started.set()

    def join(self, killed: str) -> None:
        """Wait for the loop to see the kill; it must end, not hang."""
        self._worker.join(60)
        assert not self._worker.is_alive(), f"a log call hung after {killed} died"
        assert self.failed, f"the loop should have seen {killed} die"

    def check_every_acknowledged_write_is_there(self) -> None:
        """No acknowledged step lost, none written twice, none that was never sent."""
        steps = [m.step for m in self.client.get_metric_history(self.run_id, "m")]
        assert len(steps) == len(set(steps)), "a metric was written twice"
        lost = sorted(set(self.acknowledged) - set(steps))
        assert not lost, f"{len(lost)} acknowledged writes lost, e.g. steps {lost[:10]}"
        assert set(steps) <= set(self.acknowledged) | set(self.failed)


def test_kill_9_of_mlflow_loses_no_acknowledged_write(
    stack: Stack, mlflow_client: MlflowClient
) -> None:
    logger = MetricLogger(mlflow_client, "crash", acknowledged_before_kill=20)
    pid = stack.status()["services"]["mlflow"]["pid"]
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    logger.join("the server")
    status = stack.status()
    assert status["services"]["mlflow"]["healthy"] is False

    stack.kit("up")
    logger.check_every_acknowledged_write_is_there()


# RDS for MySQL's defaults (binary logging is on because every cloud environment keeps backups).
RDS_DURABILITY = {
    "innodb_flush_log_at_trx_commit": 1,
    "sync_binlog": 1,
    "innodb_doublewrite": "ON",
    "log_bin": "ON",
}


def database_ca(stack: Stack) -> Path:
    """The CA the stack's database certificate was issued by (its clients verify against it)."""
    return tls_files(StatePaths(stack.home / "state")).ca


def database_login(stack: Stack, **tls: object) -> pymysql.connections.Connection:
    """MLflow's own login over TCP; TLS verified against the stack's CA unless `tls` says else."""
    creds = json.loads((stack.home / "state" / "secrets" / "credentials.json").read_text())
    options = tls or {"ssl_ca": str(database_ca(stack)), "ssl_verify_identity": True}
    return pymysql.connect(
        host="127.0.0.1",
        port=stack.ports["database"],
        user=creds["db_username"],
        password=creds["db_password"],
        connect_timeout=5,
        **options,  # type: ignore[arg-type]
    )


def durability_settings(stack: Stack) -> dict[str, object]:
    """The running database's durability settings, asked over TCP with MLflow's own login."""
    conn = database_login(stack)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@innodb_doublewrite,"
            " @@log_bin"
        )
        row = cur.fetchone()
    assert row is not None
    # MariaDB answers booleans as 1/0, MySQL 8.0.30+ answers innodb_doublewrite as ON/OFF.
    flag = {1: "ON", 0: "OFF", "1": "ON", "0": "OFF"}
    return {
        "innodb_flush_log_at_trx_commit": int(row[0]),
        "sync_binlog": int(row[1]),
        "innodb_doublewrite": flag.get(row[2], row[2]),
        "log_bin": flag.get(row[3], row[3]),
    }


def test_kill_9_of_the_database_loses_no_acknowledged_write(
    stack: Stack, mlflow_client: MlflowClient
) -> None:
    """The database server dies (SIGKILL) while a client logs metrics through MLflow; `invoke up`
    brings it back (supervisord leaves a crashed service down, as `up` says). Every metric whose
    log call returned is there afterwards, and the server runs with RDS's durability settings,
    without which an acknowledged commit can be lost to a crash."""
    assert durability_settings(stack) == RDS_DURABILITY
    logger = MetricLogger(mlflow_client, "database-crash", acknowledged_before_kill=50)
    database = stack.status()["services"]["database"]
    os.killpg(os.getpgid(database["pid"]), signal.SIGKILL)
    logger.join("the database")
    assert stack.status()["services"]["database"]["healthy"] is False

    stack.kit("up")
    status = stack.status()
    for name, service in status["services"].items():
        assert service["healthy"] is True, name
    assert status["services"]["database"]["pid"] != database["pid"]
    logger.check_every_acknowledged_write_is_there()
    assert durability_settings(stack) == RDS_DURABILITY


def test_database_takes_only_tls_verified_against_the_kits_ca(
    runtime_stack: Stack, tmp_path: Path
) -> None:
    """As RDS with `require_secure_transport` (issue 10, defect 4): a client without TLS is
    refused; with TLS the server's certificate verifies against the kit's CA for the address the
    host uses, and not against another CA. MLflow itself answering (the status test) shows its
    own connections take TLS, since nothing else gets in."""
    with pytest.raises(pymysql.err.OperationalError) as plain:
        database_login(runtime_stack, ssl_disabled=True)
    # MariaDB answers "Access denied" (1045), MySQL "insecure transport prohibited" (3159).
    assert plain.value.args[0] in (1045, 3159), plain.value

    conn = database_login(runtime_stack)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT @@require_secure_transport")
        assert cur.fetchone() == (1,)
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
        assert row is not None and row[1] in ("TLSv1.2", "TLSv1.3")

    other, _ = ensure_tls(StatePaths(tmp_path))  # another stack's CA
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        database_login(runtime_stack, ssl_ca=str(other.ca), ssl_verify_identity=True)


def served_certificate(stack: Stack) -> x509.Certificate:
    """The certificate the database presents to a new connection now."""
    conn = database_login(stack)
    with conn:
        der = conn._sock.getpeercert(binary_form=True)  # PyMySQL's socket, TLS-wrapped
    return x509.load_der_x509_certificate(der)


def test_up_renews_an_ending_certificate_and_the_running_server_serves_it(stack: Stack) -> None:
    """Ten days before its end the server's certificate is replaced by the next `up`, and the
    running database (not restarted) serves the new one to the next client."""
    paths = StatePaths(stack.home / "state")
    tls = tls_files(paths)
    # Issued as if SERVER_DAYS - 10 days ago: it ends in ten days.
    tls.cert.unlink()
    ensure_tls(paths, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=SERVER_DAYS - 10))
    ending = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    database_pid = stack.status()["services"]["database"]["pid"]
    with root_connection(paths.socket("mysqld.sock")) as conn, conn.cursor() as cur:
        cur.execute("FLUSH SSL")
    assert served_certificate(stack).serial_number == ending.serial_number

    up = stack.kit("up")
    assert "TLS certificate issued" in " ".join(up.stderr.split())
    served = served_certificate(stack)
    assert served.serial_number != ending.serial_number
    assert served.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
    assert stack.status()["services"]["database"]["pid"] == database_pid


# A state folder too deep for a unix socket's path (CI's temporary trees reach that) keeps its
# sockets in a short private folder, which `down` removes with them.
@pytest.mark.parametrize("depth", ["shallow", "deep"])
def test_taken_port_fails_cleanly_and_leaves_nothing_running(tmp_path: Path, depth: str) -> None:
    from tests.cli import kit

    ports = {"mlflow": 16000, "s3": 19433, "aws": 16566, "database": 16307}
    config = write_config(tmp_path / "environments.toml", ports)
    home = tmp_path / "state" if depth == "shallow" else tmp_path / ("deep" * 20) / "state"
    paths = StatePaths(home)
    assert (paths.socket("supervisor.sock").parent == paths.short_run) == (depth == "deep")
    env = {"MLPLATFORM_HOME": str(home), "MLPLATFORM_CONFIG": str(config)}
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", ports["mlflow"]))
        blocker.listen()
        result = kit("up", env=env)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1
    assert lines == [
        "error: port 16000 for mlflow is taken by another process; stop it or "
        "change [local.ports] in environments.toml"
    ]
    # database, s3 and aws started before the clash: all of them were stopped again.
    for port in (ports["database"], ports["s3"], ports["aws"], ports["s3"] + 1):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
    assert not paths.socket("supervisor.sock").exists()
    assert not paths.short_run.exists()
    assert kit("down", env=env).returncode == 0


def health_check(stack: Stack, auth_config_dir: Path) -> subprocess.CompletedProcess[str]:
    """`python -m mlflow_server health` as the runtimes run it, for the stack's MLflow."""
    return entrypoint(
        "health",
        env={
            "MLFLOW_PORT": str(stack.ports["mlflow"]),
            "MLFLOW_AUTH_CONFIG_DIR": str(auth_config_dir),
        },
    )


def test_health_logs_in_to_the_database_as_the_server_did(stack: Stack, tmp_path: Path) -> None:
    """The check ECS and compose run: healthy with the server's login; with that login's password
    rotated away (simulated on a copy of its 0600 auth ini), one line and exit 1, so the task is
    replaced. MariaDB answers for real both times."""
    run = stack.home / "state" / "run"
    result = health_check(stack, run)
    assert (result.returncode, result.stderr) == (0, "")

    ini = configparser.ConfigParser(interpolation=None)
    ini.read(run / "basic_auth.ini")
    uri = ini["mlflow"]["database_uri"]
    scheme, _, rest = uri.partition("://")
    login, _, where = rest.rpartition("@")
    user = login.split(":", 1)[0]
    rotated = f"{scheme}://{user}:rotated-away@{where}"
    (tmp_path / "basic_auth.ini").write_text(f"[mlflow]\ndatabase_uri = {rotated}\n")
    stale = health_check(stack, tmp_path)
    assert stale.returncode == 1, stale.stderr
    (line,) = stale.stderr.splitlines()
    assert "Access denied for user" in line and "rotated-away" not in line


def test_migrate_as_master_creates_mlflows_own_login_on_its_schema_only(stack: Stack) -> None:
    """The cloud's migrate task (issue 10, defect 5): logged in as the master, it creates MLflow's
    user from MLFLOW_APP_DB_*, with every right on MLflow's schema and none elsewhere, then
    migrates. Run twice, it changes nothing. Real MariaDB; the master here is a test user."""
    schema, master, app = "mlp_login_test", "mlp_test_master", "mlp_test_app"
    socket_path = StatePaths(stack.home / "state").socket("mysqld.sock")
    with root_connection(socket_path) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
        cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY 'master-pw-1'", (master,))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (master,))
        conn.commit()
    port = stack.ports["database"]
    env = {
        "MLFLOW_DB_URI": f"mysql+pymysql://{master}:master-pw-1@127.0.0.1:{port}/{schema}"
        f"?ssl_ca={database_ca(stack)}",
        "MLFLOW_APP_DB_USERNAME": app,
        "MLFLOW_APP_DB_PASSWORD": "app-pw-1",
    }
    try:
        for _ in range(2):
            result = entrypoint("migrate", env=env, timeout=300)
            assert result.returncode == 0, result.stderr[-2000:]
            assert f"user {app} has all privileges on {schema} and nothing else" in result.stderr
            assert "app-pw-1" not in result.stderr and "master-pw-1" not in result.stderr
        login = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user=app,
            password="app-pw-1",
            database=schema,
            ssl_ca=str(database_ca(stack)),
            ssl_verify_identity=True,
        )
        with login, login.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM experiments")
            cur.execute("SHOW DATABASES")
            assert {row[0] for row in cur.fetchall()} == {"information_schema", schema}
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute("SELECT user FROM mysql.user")
    finally:
        with root_connection(socket_path) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{schema}`")
            for user in (master, app):
                cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
            conn.commit()
