"""Schema migrations for the tracking store and the basic-auth store (one database, two histories).

Tracking tables are created and upgraded by MLflow's own `mlflow db upgrade` command, run in-process
so the URI (with its password) never appears on a process command line. The auth store's first
migration names two foreign keys `fk_user_id`, which MySQL/MariaDB refuse in one schema (errno 121,
mlflow#9642): we create those three original tables with unique key names first, and MLflow then
stamps and upgrades them through its normal "legacy database" path.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["ensure_login", "migrate"]


def _precreate_auth_tables(engine: sa.Engine) -> bool:
    """Create the original auth tables with unique FK names when the auth store is empty."""
    tables = set(sa.inspect(engine).get_table_names())
    if engine.dialect.name != "mysql" or "users" in tables or "alembic_version_auth" in tables:
        return False
    meta = sa.MetaData()
    users = sa.Table(
        "users",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(255), unique=True),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("is_admin", sa.Boolean()),
    )
    for table, key, unique in (
        ("experiment_permissions", "experiment_id", "unique_experiment_user"),
        ("registered_model_permissions", "name", "unique_name_user"),
    ):
        sa.Table(
            table,
            meta,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column(key, sa.String(255), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("permission", sa.String(255)),
            sa.ForeignKeyConstraint(["user_id"], [users.c.id], name=f"fk_{table}_user_id"),
            sa.UniqueConstraint(key, "user_id", name=unique),
        )
    meta.create_all(engine)
    return True


def migrate(database_uri: str) -> list[str]:
    """Bring the tracking and auth schemas to MLflow's head revision; return what was done.

    Safe to run again: on an up-to-date database every step is a no-op.
    """
    from mlflow.db import upgrade as mlflow_db_upgrade
    from mlflow.server.auth.db.utils import migrate as auth_migrate
    from mlflow.store.db.utils import create_sqlalchemy_engine_with_retry

    done = []
    mlflow_db_upgrade.main(args=[database_uri], standalone_mode=False)
    done.append("tracking schema at head")
    engine = create_sqlalchemy_engine_with_retry(database_uri)  # type: ignore[no-untyped-call]
    try:
        if _precreate_auth_tables(engine):
            done.append("auth tables created with unique foreign-key names")
        auth_migrate(engine, "head")
        done.append("auth schema at head")
    finally:
        engine.dispose()
    return done


def ensure_login(database_uri: str, username: str, password: str) -> str:
    """Create MLflow's own user (as the master of `database_uri`) with rights on its schema only.

    Idempotent, and the password is set to the secret's each time: after a restore from a
    snapshot, or a user made by hand, the secret stays the truth. With multi-user rotation the
    secret names whichever of the two users is current; the rotation function made the other.
    """
    url = sa.engine.make_url(database_uri)
    schema = url.database
    if not schema or "`" in schema:
        raise ValueError("the database URI must name MLflow's schema")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            who = {"user": username, "password": password}
            connection.execute(
                sa.text("CREATE USER IF NOT EXISTS :user@'%' IDENTIFIED BY :password"), who
            )
            connection.execute(sa.text("ALTER USER :user@'%' IDENTIFIED BY :password"), who)
            connection.execute(
                sa.text(f"GRANT ALL PRIVILEGES ON `{schema}`.* TO :user@'%'"), {"user": username}
            )
    finally:
        engine.dispose()
    return f"user {username} has all privileges on {schema} and nothing else"
