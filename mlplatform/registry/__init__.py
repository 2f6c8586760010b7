"""The model registry: MLflow clients, versions, the promotion gate, promotion between registries.

- client.py     an authenticated MLflow client (Registry: one environment's registry and login)
- archive.py    reproducible archives and manifests (same files, same bytes)
- gate.py       the promotion gate: `champion` moves only to a challenger at least as good
- promotion.py  copy a version to another registry, verified file by file, registered once
- users.py      the MLflow users the platform needs besides the admin
"""
