"""The local stack: MariaDB, SeaweedFS, moto and MLflow on 127.0.0.1, native or under compose.

- lifecycle.py       up, down, status, env as the tasks call them
- services.py        the one definition of the four services, read by both runtimes
- runtimes/          native (supervised processes) and compose (Docker or Podman)
- supervisor.py      supervisord for the native runtime
- compose_file.py    compose/docker-compose.yml rendered from services.py
- credentials.py     credentials generated on the first `up` (0600 files in the state folder)
- database_admin.py  the local database server's data dir, database and users
- health.py          each service's health, from the host
- access.py          the running stack's endpoints and credentials for the tasks that use it
"""
