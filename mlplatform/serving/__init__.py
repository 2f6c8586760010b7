"""Serving: a registry version locally with SageMaker's contract, and on SageMaker endpoints.

- local.py      `invoke serve`: package a version and run MLflow's scoring server, supervised
- endpoints.py  `invoke deploy-endpoint`/traffic/rollback/status for one cloud environment
- rollout.py    SageMaker's side of a rollout: models, configs, alarms, scaling, traffic
"""
