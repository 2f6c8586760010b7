"""The one-off MLflow database migration as an ECS task: run it once, wait, record the result.

    task_id = run_migration(ecs, migrate_run_task_request(outputs), digest, reporter)
    migrated_digest(ecs, outputs["MigrateTaskDefinitionArn"])   # digest whose migration succeeded

A successful migration is recorded as a tag on the migrate task definition revision. A revision
names exactly one image, and CloudFormation makes a new revision for every new image, so the tag
says "the database has this release's schema" and survives any number of reruns and machines.
A migration still running from an interrupted deploy is waited for, never started twice: two
migrations of one database race.
"""

from __future__ import annotations

import uuid
from typing import Any

import botocore.exceptions

from mlplatform.errors import PlatformError
from mlplatform.local.runtimes.base import Reporter

__all__ = ["MIGRATED_TAG", "MigrationError", "migrated_digest", "run_migration"]

MIGRATED_TAG = "mlplatform:migrated-digest"
# The longest expected migration; a stuck one fails the step instead of hanging the deploy.
_WAIT = {"Delay": 6, "MaxAttempts": 200}
_BOTO_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


class MigrationError(PlatformError):
    """The migrate task could not run, did not stop, or exited non-zero."""


def migrated_digest(ecs: Any, task_definition_arn: str) -> str | None:
    """The image digest whose migration succeeded with this task definition, if any."""
    try:
        tags = ecs.list_tags_for_resource(resourceArn=task_definition_arn).get("tags", [])
    except _BOTO_ERRORS as exc:
        raise MigrationError(f"cannot read the tags of {task_definition_arn}: {exc}") from None
    return next((t["value"] for t in tags if t["key"] == MIGRATED_TAG), None)


def run_migration(ecs: Any, request: dict[str, Any], digest: str, reporter: Reporter) -> str:
    """Run (or join) the migrate task to its end; tag the definition on exit code 0.

    `request` is mlplatform.release.cdk_cli.migrate_run_task_request(outputs). Returns the task id.
    """
    cluster, definition = request["cluster"], request["taskDefinition"]
    arn = ""
    try:
        earlier = _unfinished(ecs, cluster, definition)
        if earlier is not None:
            arn = earlier
            reporter.step(f"migrate: a migration task started earlier is running: {_id(arn)}")
        else:
            # The token makes botocore's retries of this call start one task, not several.
            started = ecs.run_task(**request, clientToken=uuid.uuid4().hex)
            if started.get("failures") or not started.get("tasks"):
                reason = (started.get("failures") or [{}])[0].get("reason", "no task started")
                raise MigrationError(f"RunTask: {reason}")
            arn = started["tasks"][0]["taskArn"]
            reporter.step(f"migrate: waiting for task {_id(arn)}")
        ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=_WAIT)
        (task,) = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
    except botocore.exceptions.WaiterError:
        raise MigrationError(
            f"task {_id(arn)} is still running after {_WAIT['Delay'] * _WAIT['MaxAttempts']} s; "
            "it was left running: rerun the deploy to wait for it"
        ) from None
    except _BOTO_ERRORS as exc:
        raise MigrationError(str(exc)) from None
    codes = [c.get("exitCode") for c in task.get("containers", [])]
    if not codes or any(code != 0 for code in codes):
        raise MigrationError(
            f"task {_id(arn)} stopped with exit code {codes[0] if codes else 'unknown'} "
            f"({task.get('stoppedReason') or 'no reason given'})"
        )
    try:
        ecs.tag_resource(resourceArn=definition, tags=[{"key": MIGRATED_TAG, "value": digest}])
    except _BOTO_ERRORS as exc:
        raise MigrationError(f"migrated, but cannot record it on {definition}: {exc}") from None
    return _id(arn)


def _unfinished(ecs: Any, cluster: str, definition: str) -> str | None:
    family = definition.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    arns = ecs.list_tasks(cluster=cluster, family=family, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return None
    for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
        if task["taskDefinitionArn"] == definition and task.get("lastStatus") != "STOPPED":
            return str(task["taskArn"])
    return None


def _id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
