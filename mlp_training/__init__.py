"""The kit's helper for training code: job contract, MLflow login, lineage, registration.

A source (docs/training.md) may import it; nothing requires it. What it gives:

- `run(train)`: the job around a source's `train(job)` function (hyperparameters, failure file,
  exit codes, the result the runners read, no version left behind by a failed job);
- `Job`: the channels (`job.channel("train")`), hyperparameters as strings, `start_run()` (login
  from Secrets Manager, the model's experiment, lineage tags), `log_hyperparameters(values)`
  (the effective values, which `invoke reproduce` passes again) and `log_model(flavor, model)`
  (logged, saved into model.tar.gz's folder, registered as `challenger`);
- `MetricStream`: metrics from a training loop without waiting for the server;
- `JobError`: raise it for a failure the job's owner can fix; it becomes one line and exit 2.

It needs mlflow and boto3 in the source's requirements (the kit's `invoke lock --source` checks).
"""

from mlp_training.contract import Contract, channel_sha256, contract_from_env
from mlp_training.job import CHALLENGER, MODEL_SUBDIR, Job, JobError, parse_arguments, run
from mlp_training.tracking import MetricStream, TrackingError

__all__ = [
    "CHALLENGER",
    "MODEL_SUBDIR",
    "Contract",
    "Job",
    "JobError",
    "MetricStream",
    "TrackingError",
    "channel_sha256",
    "contract_from_env",
    "parse_arguments",
    "run",
]
