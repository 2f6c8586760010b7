"""The machines a training job runs on: a model's compute settings, resolved for one job.

    compute = job_compute(env, "fraud-classifier", instance_count=None)
    compute.instance_count, compute.spot, compute.max_wait_seconds

Each model's `[E.models.NAME.compute]` (instance type and count, volume, max runtime) over the
environment's defaults (`[E.sagemaker] training_instance_type`, `[E.training]
max_runtime_seconds`), and the environment's managed spot switch (`[E.training] managed_spot`,
on outside prod unless set). `invoke train --instance-count N` overrides the count for one job.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplatform.config import Environment
from mlplatform.errors import TrainingError

__all__ = ["CHECKPOINT_PATH", "MAX_INSTANCES", "Compute", "job_compute", "one_instance"]

# Where SageMaker syncs a job's checkpoints from and to (CheckpointConfig.LocalPath).
CHECKPOINT_PATH = "/opt/ml/checkpoints"
MAX_INSTANCES = 100


@dataclass(frozen=True)
class Compute:
    """What one job asks SageMaker for."""

    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    spot: bool
    # Spot only: how long the job may wait for capacity and run, in all.
    max_wait_seconds: int | None

    @property
    def waited_seconds(self) -> int:
        """The longest the job can take from submission to its end."""
        return self.max_wait_seconds or self.max_runtime_seconds


def job_compute(env: Environment, model: str, instance_count: int | None = None) -> Compute:
    """The model's compute for one job; TrainingError (one line) for what SageMaker refuses."""
    settings = env.models[env.model(model)].compute
    count = settings.instance_count if instance_count is None else instance_count
    if not 1 <= count <= MAX_INSTANCES:
        raise TrainingError(f"--instance-count must be between 1 and {MAX_INSTANCES}, got {count}")
    runtime = settings.max_runtime_seconds or env.training.max_runtime_seconds
    training = env.training
    spot = training.managed_spot if training.managed_spot is not None else env.name != "prod"
    wait = (training.max_wait_seconds or 2 * runtime) if spot else None
    if wait is not None and wait < runtime:
        raise TrainingError(
            f"[{env.name}.training] max_wait_seconds ({wait}) is shorter than {model}'s max "
            f"runtime ({runtime} s): a spot job waits and runs within it (SageMaker's rule)"
        )
    return Compute(
        instance_type=settings.instance_type or env.sagemaker.training_instance_type,
        instance_count=count,
        volume_size_gb=settings.volume_size_gb,
        max_runtime_seconds=runtime,
        spot=spot,
        max_wait_seconds=wait,
    )


def one_instance(compute: Compute, runner: str) -> None:
    """TrainingError unless the job is one instance: `runner` trains on one machine."""
    if compute.instance_count > 1:
        raise TrainingError(
            f"the {runner} runner trains on one machine, and this job asks for "
            f"{compute.instance_count} instances: train it with --runner sagemaker (or "
            "--instance-count 1)"
        )
