"""`python -m mlflow_server serve [--migrate]` | `migrate` | `health`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mlflow_server.settings import SettingsError, app_login, read_settings

log = logging.getLogger("mlflow_server")


def main(argv: list[str] | None = None) -> int:
    """Parse the command, resolve settings from the environment, then migrate and/or serve."""
    parser = argparse.ArgumentParser(prog="python -m mlflow_server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the MLflow server with basic auth")
    serve.add_argument(
        "--migrate", action="store_true", help="migrate the schemas before serving (single server)"
    )
    sub.add_parser("migrate", help="upgrade the tracking and auth schemas, then exit")
    sub.add_parser("health", help="exit 0 when the server answers and its database login works")
    args = parser.parse_args(argv)
    if args.command == "health":
        from mlflow_server.health import check

        problem = check()
        if problem:
            print(f"mlflow_server: unhealthy: {problem}", file=sys.stderr)
            return 1
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mlflow_server %(message)s")

    try:
        settings = read_settings(need_server=args.command == "serve")
    except SettingsError as exc:
        print(f"mlflow_server: {exc}", file=sys.stderr)
        return 2
    log.info("settings %r", settings)

    if args.command == "migrate" or args.migrate:
        from mlflow_server.database import ensure_login, migrate

        try:
            login = app_login()
        except SettingsError as exc:
            print(f"mlflow_server: {exc}", file=sys.stderr)
            return 2
        if login is not None:
            log.info("migrate: %s", ensure_login(settings.database_uri, *login))
        for step in migrate(settings.database_uri):
            log.info("migrate: %s", step)
        if args.command == "migrate":
            return 0

    from mlflow_server.serve import server_command, server_environment, write_auth_config

    ini = write_auth_config(settings, os.environ.get("MLFLOW_AUTH_CONFIG_DIR"))
    argv_ = server_command(settings)
    log.info("exec %s", " ".join(argv_[1:]))
    sys.stdout.flush()
    # exec keeps this pid, so a supervisor's signals and process group reach the server directly.
    os.execve(argv_[0], argv_, server_environment(settings, ini))  # noqa: S606
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
