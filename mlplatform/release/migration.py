"""The one-off MLflow database migration as an ECS task: run it once, wait, record the result.

    task_id = run_migration(ecs, migrate_run_task_request(outputs), digest, reporter)
    migrated_digest(ecs, outputs[Output.MIGRATE_TASK_DEFINITION_ARN])  # its migrated digest

A successful migration is recorded as a tag on the migrate task definition revision. A revision
names exactly one image, and CloudFormation makes a new revision for every new image, so the tag
says "the database has this release's schema" and survives any number of reruns and machines.
A migration still running from an interrupted deploy is waited for, never started twice: two
migrations of one database race.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from mlplatform.errors import MigrationError
from mlplatform.names import Output
from mlplatform.reporting import Reporter

__all__ = [
    "MIGRATED_TAG",
    "MigrationError",
    "migrate_run_task_request",
    "migrated_digest",
    "run_migration",
]

MIGRATED_TAG = "mlplatform:migrated-digest"
# The longest expected migration; a stuck one fails the step instead of hanging the deploy.
_WAIT = {"Delay": 6, "MaxAttempts": 200}
_BOTO_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def migrated_digest(ecs: Any, task_definition_arn: str) -> str | None:
    """The image digest whose migration succeeded with this task definition, if any."""
    try:
        tags = ecs.list_tags_for_resource(resourceArn=task_definition_arn).get("tags", [])
    except _BOTO_ERRORS as exc:
        raise MigrationError(f"cannot read the tags of {task_definition_arn}: {exc}") from exc
    return next((t["value"] for t in tags if t["key"] == MIGRATED_TAG), None)


def run_migration(ecs: Any, request: dict[str, Any], digest: str, reporter: Reporter) -> str:
    """Run (or join) the migrate task to its end; tag the definition on exit code 0.

    `request` is migrate_run_task_request(outputs). Returns the task id.
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
    except botocore.exceptions.WaiterError as exc:
        raise MigrationError(
            f"task {_id(arn)} is still running after {_WAIT['Delay'] * _WAIT['MaxAttempts']} s; "
            "it was left running: rerun the deploy to wait for it"
        ) from exc
    except _BOTO_ERRORS as exc:
        raise MigrationError(str(exc)) from exc
    codes = [c.get("exitCode") for c in task.get("containers", [])]
    if not codes or any(code != 0 for code in codes):
        raise MigrationError(
            f"task {_id(arn)} stopped with exit code {codes[0] if codes else 'unknown'} "
            f"({task.get('stoppedReason') or 'no reason given'})"
        )
    try:
        ecs.tag_resource(resourceArn=definition, tags=[{"key": MIGRATED_TAG, "value": digest}])
    except _BOTO_ERRORS as exc:
        raise MigrationError(f"migrated, but cannot record it on {definition}: {exc}") from exc
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


def migrate_run_task_request(outputs: Mapping[str, str]) -> dict[str, object]:
    """ECS RunTask arguments for the one-off ``migrate`` task, from the stacks' outputs.

    ``outputs`` merges the outputs of the network stack (PrivateSubnetIds) and the mlflow stack
    (ClusterName, MigrateTaskDefinitionArn, TaskSecurityGroupId). Run it once per release,
    before the service rolls to the new image: two servers migrating one database race.

        ecs.run_task(**migrate_run_task_request(outputs))
    """
    return {
        "cluster": outputs[Output.CLUSTER_NAME],
        "taskDefinition": outputs[Output.MIGRATE_TASK_DEFINITION_ARN],
        "launchType": "FARGATE",
        "count": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": [s for s in outputs[Output.PRIVATE_SUBNET_IDS].split(",") if s],
                "securityGroups": [outputs[Output.TASK_SECURITY_GROUP_ID]],
                "assignPublicIp": "DISABLED",
            }
        },
    }
