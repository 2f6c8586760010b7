"""The kit's own toolchain: locks, system and Node packages, and which tests run.

- locking.py      hash-locked requirements per dependency group
- system_deps.py  Debian packages the stack and tests need (apt, as root)
- node_deps.py    the pinned CDK CLI from package-lock.json
- rds_ca.py       Amazon RDS's CA bundle for the MLflow image, from a locked npm package
- testing.py      the pytest command `invoke test` runs
- mutation.py     mutmut over the core modules (`invoke mutate`, docs/testing.md)
"""
