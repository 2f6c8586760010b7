"""Both runtimes come from one definition: the compose file is its rendering and says the same."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlplatform.config import load_environment
from mlplatform.local.compose_file import COMPOSE_PATH, render
from mlplatform.local.credentials import load_or_create
from mlplatform.local.runtimes.native import NativeRuntime
from mlplatform.local.services import SERVICES, compose_endpoints, mlflow_environment
from mlplatform.paths import StatePaths

ENV = load_environment("local")
ENDPOINT_KEYS = {
    "MLFLOW_DB_HOST",
    "MLFLOW_DB_PORT",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_SHARED_CREDENTIALS_FILE",
    "MLFLOW_HOST",
    "MLFLOW_PORT",
    # Where the server writes its auth ini: the state folder natively, the container's /tmp.
    "MLFLOW_AUTH_CONFIG_DIR",
    # The kit's CA: in the state folder natively, a compose secret in the container.
    "MLFLOW_DB_SSL_CA",
}


def compose() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text(encoding="utf-8"))


def test_committed_compose_file_is_the_rendering_of_the_definition() -> None:
    assert COMPOSE_PATH.read_text(encoding="utf-8") == render(ENV), "run ./kit compose-file"


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is installed by ./kit test"
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_PATH), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_same_services_ports_and_mlflow_settings_in_both_runtimes(tmp_path: Path) -> None:
    doc = compose()
    assert list(doc["services"]) == [s.name for s in SERVICES]
    native = NativeRuntime(ENV, StatePaths(tmp_path))
    programs = {p.name: p for p in native._programs()}
    for s in SERVICES:
        published = doc["services"][s.name]["ports"][0]
        assert published.startswith("127.0.0.1:") and published.endswith(f":{s.container_port}")
        assert f":-{s.host_port(ENV)}}}" in published
    native_env = programs["mlflow"].environment
    compose_env = doc["services"]["mlflow"]["environment"]
    shared = set(compose_env) - ENDPOINT_KEYS
    assert shared, "the MLflow settings are compared"
    assert {k: native_env[k] for k in shared} == {k: compose_env[k] for k in shared}
    assert set(compose_env) <= set(native_env)
    # The same entrypoint and command in both.
    assert doc["services"]["mlflow"]["command"] == ["serve", "--migrate"]
    assert programs["mlflow"].command[-3:] == ["mlflow_server", "serve", "--migrate"]
    assert doc["services"]["s3"]["command"][1:] != [] and all(
        flag in programs["s3"].command for flag in ("-master.telemetry=false", "-webdav=false")
    )
    if "database" in programs:
        # The same flags; the TLS files' paths differ (state folder, compose secrets).
        def option(flag: str) -> str:
            return flag.split("=", 1)[0] if flag.startswith("--ssl-") else flag

        native_flags = {option(f) for f in programs["database"].command}
        for flag in doc["services"]["database"]["command"]:
            assert option(flag) in native_flags
        assert "--require-secure-transport=ON" in native_flags


def test_mlflow_gets_secret_ids_never_secret_values(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path).ensure()
    creds, _ = load_or_create(paths, ENV)
    secrets = [
        creds.db_password,
        creds.admin_password,
        creds.flask_secret_key,
        creds.s3_secret_key,
        creds.db_root_password,
    ]
    # What the native runtime writes for supervisord (commands and environments of every
    # program) and the compose file hold secret ids and file paths, never a value.
    runtime = NativeRuntime(ENV, paths)
    runtime.supervisor.write_config(runtime._programs())
    written = runtime.supervisor.conf.read_text(encoding="utf-8")
    assert "MLFLOW_DB_SECRET_ID" in written and str(paths.secrets) in written
    text = COMPOSE_PATH.read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in written and secret not in text
    env = mlflow_environment(ENV, compose_endpoints())
    assert env["MLFLOW_DB_SECRET_ID"] == ENV.database_secret_name
    assert env["MLFLOW_ADMIN_SECRET_ID"] == ENV.admin_secret_name


@pytest.mark.parametrize("service", ["database", "s3", "aws", "mlflow"])
def test_every_compose_service_has_a_healthcheck(service: str) -> None:
    health = compose()["services"][service]["healthcheck"]
    assert health["test"] and health["retries"] > 0


def test_mlflow_waits_for_healthy_dependencies() -> None:
    depends = compose()["services"]["mlflow"]["depends_on"]
    assert depends == {n: {"condition": "service_healthy"} for n in ("database", "s3", "aws")}


def test_images_are_overridable() -> None:
    for s in SERVICES:
        assert compose()["services"][s.name]["image"].startswith(f"${{{s.image_variable}:-")


def test_compose_database_serves_tls_from_the_kits_files_and_mlflow_verifies_them() -> None:
    doc = compose()
    database = doc["services"]["database"]
    assert "--require-secure-transport=ON" in database["command"]
    mounted = {f"/run/secrets/{name}" for name in database["secrets"]}
    for option in ("--ssl-ca=", "--ssl-cert=", "--ssl-key="):
        (flag,) = [f for f in database["command"] if f.startswith(option)]
        assert flag.removeprefix(option) in mounted
    mlflow = doc["services"]["mlflow"]
    assert mlflow["environment"]["MLFLOW_DB_SSL_CA"] == "/run/secrets/db_ca"
    assert "db_ca" in mlflow["secrets"] and "db_server_key" not in mlflow["secrets"]
    # Every mounted TLS file is the copy the kit keeps for containers (a 0444 file in a 0700
    # folder), never the 0600 original the database user could not read.
    for name in ("db_ca", "db_server_cert", "db_server_key"):
        assert doc["secrets"][name]["file"].split("}/", 1)[1].startswith("container/")
