"""The server entrypoint's configuration: secrets resolved, never put on a command line."""

from __future__ import annotations

import configparser
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlflow_server import serve
from mlflow_server.__main__ import main
from mlflow_server.settings import (
    PUBLIC_DEFAULT_ADMIN_PASSWORD,
    SettingsError,
    app_login,
    read_settings,
    redact_uri,
)
from tests.cli import entrypoint
from tests.emulator.process import free_port

BASE = {
    "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/mlflow-artifacts",
    "MLFLOW_ALLOWED_HOSTS": "localhost,mlflow.internal:443",
    "MLFLOW_WORKERS": "3",
}
DB_PASSWORD = "db-pa%ss@word/1"
ADMIN_PASSWORD = "admin-password-%-long-enough"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch):
    """Secrets Manager (moto, in-process) holding RDS-shaped database and admin secrets."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sm = boto3.client("secretsmanager")
        sm.create_secret(
            Name="db",
            SecretString=json.dumps(
                {"username": "mlflow", "password": DB_PASSWORD, "engine": "mysql", "port": 3306}
            ),
        )
        sm.create_secret(
            Name="admin", SecretString=json.dumps({"username": "admin", "password": ADMIN_PASSWORD})
        )
        sm.create_secret(Name="flask", SecretString="flask-key")
        sm.create_secret(Name="not-json", SecretString="plain")
        yield sm


def secret_env(**extra: str) -> dict[str, str]:
    return {
        **BASE,
        "MLFLOW_DB_HOST": "db.internal",
        "MLFLOW_DB_PORT": "3306",
        "MLFLOW_DB_NAME": "mlflow",
        "MLFLOW_DB_SECRET_ID": "db",
        "MLFLOW_ADMIN_SECRET_ID": "admin",
        "MLFLOW_FLASK_SECRET_ID": "flask",
        **extra,
    }


def test_credentials_come_from_secrets_manager(secrets) -> None:
    s = read_settings(secret_env())
    assert s.database_uri == "mysql+pymysql://mlflow:db-pa%25ss%40word%2F1@db.internal:3306/mlflow"
    assert (s.admin_username, s.admin_password, s.flask_secret_key) == (
        "admin",
        ADMIN_PASSWORD,
        "flask-key",
    )
    assert s.workers == 3
    assert "db-pa%25ss" not in repr(s) and ADMIN_PASSWORD not in repr(s)
    assert "mlflow:***@db.internal" in repr(s)


def test_credentials_injected_by_ecs() -> None:
    env = {
        **BASE,
        "MLFLOW_DB_HOST": "h",
        "MLFLOW_DB_NAME": "mlflow",
        "MLFLOW_DB_USERNAME": "u",
        "MLFLOW_DB_PASSWORD": "p",
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "k",
    }
    s = read_settings(env)
    assert s.database_uri == "mysql+pymysql://u:p@h:3306/mlflow"


def test_a_configured_ca_makes_the_connection_verify_chain_and_host(
    secrets, tmp_path: Path
) -> None:
    """What SQLAlchemy hands PyMySQL for MLFLOW_DB_SSL_CA: the CA, and no switch that turns
    verification off (PyMySQL then requires the certificate and checks the host name)."""
    import sqlalchemy as sa

    bundle = tmp_path / "rds-ca-bundle.pem"
    bundle.write_text("certificates")
    s = read_settings(secret_env(MLFLOW_DB_SSL_CA=str(bundle)))
    assert s.database_uri.endswith(f"@db.internal:3306/mlflow?ssl_ca={bundle}")
    url = sa.engine.make_url(s.database_uri)
    _, kwargs = sa.create_engine(url).dialect.create_connect_args(url)
    assert kwargs["ssl"] == {"ca": str(bundle)}
    assert "ssl_disabled" not in kwargs and "ssl_verify_cert" not in kwargs
    # Without the variable PyMySQL would merely prefer TLS, unverified: it is set everywhere
    # the kit runs the server (local runtimes, the ECS task definition).
    assert "ssl" not in read_settings(secret_env()).database_uri


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MLFLOW_DB_SSL_CA": "/nowhere/ca.pem"}, "MLFLOW_DB_SSL_CA names /nowhere/ca.pem"),
        ({"MLFLOW_DB_SECRET_ID": "missing"}, "cannot read secret 'missing'"),
        ({"MLFLOW_DB_SECRET_ID": "not-json"}, "is not JSON with username and password"),
        ({"MLFLOW_ADMIN_SECRET_ID": "flask"}, "is not JSON"),
        ({"MLFLOW_DB_ENGINE": "oracle"}, "MLFLOW_DB_ENGINE must be mysql or mariadb"),
        ({"MLFLOW_WORKERS": "many"}, "MLFLOW_WORKERS must be an integer"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": ""}, "MLFLOW_ARTIFACTS_DESTINATION is not set"),
    ],
)
def test_bad_settings_are_one_line_errors(secrets, change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as err:
        read_settings(secret_env(**change))
    assert "\n" not in str(err.value)


def test_mlflows_historical_default_password_is_refused() -> None:
    env = {
        **BASE,
        "MLFLOW_DB_URI": "sqlite:///x.db",
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": PUBLIC_DEFAULT_ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "k",
    }
    with pytest.raises(SettingsError, match="well-known default"):
        read_settings(env)


def test_migrate_needs_only_the_database() -> None:
    s = read_settings({"MLFLOW_DB_URI": "sqlite:///x.db"}, need_server=False)
    assert s.database_uri == "sqlite:///x.db"


def test_main_exits_2_with_one_line_when_unconfigured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "mlflow_server: MLFLOW_DB_HOST is not set"


def test_command_line_carries_no_secret_and_env_carries_uri_by_variable(
    secrets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_DB_PASSWORD", "injected-secret")
    s = read_settings(secret_env())
    argv = serve.server_command(s)
    assert "--app-name" in argv and "basic-auth" in argv and "--serve-artifacts" in argv
    assert argv[argv.index("--uvicorn-opts") + 1] == "--http httptools --loop uvloop"
    joined = " ".join(argv)
    for secret in (DB_PASSWORD, "db-pa%25ss", ADMIN_PASSWORD, "flask-key"):
        assert secret not in joined
    ini = serve.write_auth_config(s, str(tmp_path))
    env = serve.server_environment(s, ini)
    assert env["MLFLOW_BACKEND_STORE_URI"] == s.database_uri
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "MLFLOW_DB_PASSWORD" not in env


def test_auth_ini_is_private_and_survives_configparser(secrets, tmp_path: Path) -> None:
    s = read_settings(secret_env())
    ini = serve.write_auth_config(s, str(tmp_path))
    assert oct(os.stat(ini).st_mode & 0o777) == "0o600"
    parser = configparser.ConfigParser()
    parser.read(ini)
    section = parser["mlflow"]
    assert section["database_uri"] == s.database_uri  # `%` round-trips through %% escaping
    assert section["admin_password"] == ADMIN_PASSWORD
    assert section["default_permission"] == "NO_PERMISSIONS"
    assert int(section["auth_cache_ttl_seconds"]) == 30


def test_allowed_hosts_match_with_any_port() -> None:
    assert serve.expand_allowed_hosts("localhost, mlflow.internal:443,*.corp") == (
        "localhost,localhost:*,mlflow.internal:443,*.corp"
    )


def test_redact_uri() -> None:
    assert redact_uri("mysql+pymysql://u:secret@h:3306/db") == "mysql+pymysql://u:***@h:3306/db"
    assert redact_uri("sqlite:///x.db") == "sqlite:///x.db"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[int]:
    """A stand-in server answering GET /health on a free loopback port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m mlflow_server health` as ECS and compose run it."""
    return entrypoint("health", env=env)


def test_health_passes_when_the_server_answers_and_its_login_works(
    answering: int, tmp_path: Path
) -> None:
    result = health({"MLFLOW_PORT": str(answering), "MLFLOW_DB_URI": f"sqlite:///{tmp_path}/x.db"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_health_fails_when_the_servers_own_login_no_longer_works(
    answering: int, tmp_path: Path
) -> None:
    """A password rotated away: the server's login (its auth ini) fails while the current
    settings would work. /health alone says OK; this check must not (issue 10, defect 3)."""
    closed = free_port()
    stale = f"mysql+pymysql://mlflow:{DB_PASSWORD.replace('%', '%%')}@127.0.0.1:{closed}/mlflow"
    (tmp_path / "basic_auth.ini").write_text(f"[mlflow]\ndatabase_uri = {stale}\n")
    result = health(
        {
            "MLFLOW_PORT": str(answering),
            "MLFLOW_AUTH_CONFIG_DIR": str(tmp_path),
            "MLFLOW_DB_URI": f"sqlite:///{tmp_path}/current.db",
        }
    )
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mlflow_server: unhealthy: database 127.0.0.1:{closed}/mlflow: ")
    assert DB_PASSWORD not in line and "Traceback" not in result.stderr


def test_health_fails_when_the_server_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    result = health({"MLFLOW_PORT": str(port), "MLFLOW_DB_URI": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"mlflow_server: unhealthy: http://127.0.0.1:{port}/health did not answer"
    )


def test_app_login_is_read_only_when_migrate_is_given_one() -> None:
    assert app_login({"MLFLOW_DB_USERNAME": "master"}) is None
    assert app_login({"MLFLOW_APP_DB_USERNAME": "app", "MLFLOW_APP_DB_PASSWORD": "pw"}) == (
        "app",
        "pw",
    )
    with pytest.raises(SettingsError, match="MLFLOW_APP_DB_PASSWORD is not set"):
        app_login({"MLFLOW_APP_DB_USERNAME": "app"})


def test_migrate_with_half_an_app_login_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_DB_URI", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("MLFLOW_APP_DB_USERNAME", "mlflow_app")
    monkeypatch.delenv("MLFLOW_APP_DB_PASSWORD", raising=False)
    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == "mlflow_server: MLFLOW_APP_DB_PASSWORD is not set\n"
