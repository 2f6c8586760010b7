"""IAM policy evaluation (mlplatform.emulator.policy_evaluation) and the calls AWS makes under
each role (mlplatform.emulator.role_calls): the decisions the strict emulator rests on."""

from __future__ import annotations

from typing import Any

import pytest

from mlplatform.emulator.policy_evaluation import (
    NamedPolicy,
    Request,
    UnsupportedPolicy,
    evaluate,
    service_may_assume,
    unused_grants,
)
from mlplatform.emulator.role_calls import (
    endpoint_calls,
    task_calls,
    training_job_calls,
)
from mlplatform.names import ecr_repository_arn

ROLE = "arn:aws:iam::222222222222:role/mlp-prod-sagemaker-execution"
BUCKET = "mlp-prod-artifacts-222222222222-eu-west-1"
KEY = "arn:aws:kms:eu-west-1:222222222222:key/1234"


def policy(*statements: dict[str, Any]) -> list[NamedPolicy]:
    return [
        NamedPolicy("ExecutionPolicy", {"Version": "2012-10-17", "Statement": list(statements)})
    ]


def allowed(action: str, resource: str, policies: list[NamedPolicy], **context: Any) -> bool:
    return evaluate(Request(ROLE, action, resource, context), policies).allowed


READ_MODELS = {
    "Sid": "Read",
    "Effect": "Allow",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/training-output/*",
}


def test_an_allow_matches_action_case_insensitively_and_resource_exactly() -> None:
    p = policy(READ_MODELS)
    assert allowed("s3:getobject", f"arn:aws:s3:::{BUCKET}/training-output/j/model.tar.gz", p)
    assert not allowed("s3:GetObject", f"arn:aws:s3:::{BUCKET}/endpoint-models/m.tar.gz", p)
    assert not allowed("s3:PutObject", f"arn:aws:s3:::{BUCKET}/training-output/x", p)
    # Resource ARNs are case-sensitive.
    assert not allowed("s3:GetObject", f"arn:aws:s3:::{BUCKET}/Training-Output/x", p)


def test_nothing_is_allowed_by_default_and_an_explicit_deny_wins() -> None:
    assert not allowed("s3:GetObject", f"arn:aws:s3:::{BUCKET}/x", [])
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    p = policy(READ_MODELS, deny)
    resource = f"arn:aws:s3:::{BUCKET}/training-output/x"
    assert allowed("s3:GetObject", resource, p, **{"aws:SecureTransport": "true"})
    decision = evaluate(
        Request(ROLE, "s3:GetObject", resource, {"aws:SecureTransport": "false"}), p
    )
    assert not decision.allowed and decision.reason == "explicitly denied by ExecutionPolicy#1"


def test_wildcards_star_and_question_mark() -> None:
    p = policy(
        {
            "Effect": "Allow",
            "Action": "ecr:Batch*",
            "Resource": "arn:aws:ecr:eu-west-1:222222222222:repository/mlp-prod/?????",
        }
    )
    repo = "arn:aws:ecr:eu-west-1:222222222222:repository/mlp-prod/"
    assert allowed("ecr:BatchGetImage", repo + "mlflo", p)
    assert not allowed("ecr:BatchGetImage", repo + "mlflow", p)
    assert not allowed("ecr:GetDownloadUrlForLayer", repo + "mlflo", p)


def test_not_action_and_not_resource() -> None:
    p = policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert allowed("s3:GetObject", "arn:aws:s3:::public/x", p)
    assert not allowed("s3:GetObject", "arn:aws:s3:::secret/x", p)
    assert not allowed("iam:CreateUser", "*", p)


def test_string_like_condition_on_the_listed_prefix() -> None:
    p = policy(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}",
            "Condition": {"StringLike": {"s3:prefix": ["datasets/*", "datasets"]}},
        }
    )
    bucket = f"arn:aws:s3:::{BUCKET}"
    assert allowed("s3:ListBucket", bucket, p, **{"s3:prefix": "datasets/fraud-v1/train"})
    assert not allowed("s3:ListBucket", bucket, p, **{"s3:prefix": "mlflow-artifacts/"})
    # Without the key a positive operator fails.
    assert not allowed("s3:ListBucket", bucket, p)


def test_an_allow_whose_condition_fails_is_not_a_deny() -> None:
    # moto's evaluator turns this into an explicit Deny, which would refuse the second statement.
    p = policy(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "*",
            "Condition": {"StringEquals": {"s3:prefix": "a"}},
        },
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
    )
    assert allowed("s3:ListBucket", "arn:aws:s3:::b", p, **{"s3:prefix": "b"})


def test_moto_evaluator_differs_from_aws_on_conditions() -> None:
    """Why the kit evaluates policies itself (docs/emulation.md): moto's answers differ."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    def moto(operator: str, prefix: str) -> PermissionResult:
        document = (
            '{"Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",'
            f' "Condition": {{"{operator}": {{"s3:prefix": "a*"}}}}}}]}}'
        )
        values = {"s3:prefix": prefix}
        return IAMPolicy(document).is_action_permitted("s3:ListBucket", "*", None, values)

    # An Allow whose condition fails becomes an explicit Deny (AWS: it just does not apply).
    assert moto("StringEquals", "b") is PermissionResult.DENIED
    # StringLike is not implemented and ignored: a prefix outside the pattern is allowed.
    assert moto("StringLike", "zz") is PermissionResult.PERMITTED
    p = policy(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "*",
            "Condition": {"StringLike": {"s3:prefix": "a*"}},
        }
    )
    assert not allowed("s3:ListBucket", "arn:aws:s3:::b", p, **{"s3:prefix": "zz"})


@pytest.mark.parametrize(
    ("operator", "value", "context", "expected"),
    [
        ("StringEquals", "x", "x", True),
        ("StringEquals", "x", "X", False),
        ("StringEqualsIgnoreCase", "x", "X", True),
        ("StringNotEquals", "x", "y", True),
        ("StringNotEquals", "x", None, True),  # negated operators hold for a missing key
        ("StringNotLike", "a*", "ab", False),
        ("StringEqualsIfExists", "x", None, True),
        ("StringEqualsIfExists", "x", "y", False),
        ("ArnLike", "arn:aws:iam::*:role/r", "arn:aws:iam::1:role/r", True),
        ("ArnNotLike", "arn:aws:iam::*:role/r", "arn:aws:iam::1:role/q", True),
        ("Bool", "true", "True", True),
        ("Null", "true", None, True),
        ("Null", "false", None, False),
        ("ForAllValues:StringLike", "a*", ["ab", "ac"], True),
        ("ForAllValues:StringLike", "a*", ["ab", "b"], False),
        ("ForAnyValue:StringEquals", "b", ["a", "b"], True),
    ],
)
def test_condition_operators(operator: str, value: str, context: Any, expected: bool) -> None:
    p = policy(
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {operator: {"k:key": value}},
        }
    )
    ctx = {} if context is None else {"k:Key": context}  # keys are case-insensitive
    assert allowed("s3:GetObject", "arn:aws:s3:::b/o", p, **ctx) is expected


@pytest.mark.parametrize(
    "statement",
    [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"s3:max-keys": "10"}},
        },
        {"Effect": "Allow", "Action": "s3:GetObject"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": "*"},
    ],
)
def test_what_it_does_not_implement_is_refused_loudly(statement: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(
            Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/o", {"s3:max-keys": "5"}),
            policy(statement),
        )


def test_trust_policy_names_the_service() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
            }
        ]
    }
    assert service_may_assume(trust, "sagemaker.amazonaws.com")
    assert not service_may_assume(trust, "ecs-tasks.amazonaws.com")


class FakeAccount:
    region, account = "eu-west-1", "222222222222"

    def bucket_key(self, bucket: str) -> str | None:
        return KEY if bucket == BUCKET else None

    def secret_arn(self, secret_id: str) -> str:
        return f"arn:aws:secretsmanager:eu-west-1:222222222222:secret:{secret_id}-AbCdEf"


def test_ecr_repository_arn() -> None:
    image = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlp-prod/serving@sha256:" + "a" * 64
    assert ecr_repository_arn(image) == (
        "arn:aws:ecr:eu-west-1:222222222222:repository/mlp-prod/serving"
    )
    assert ecr_repository_arn("ghcr.io/mlflow/mlflow:v3") is None


def as_set(calls: Any) -> set[tuple[str, str]]:
    return {(r.action, r.resource) for r in calls.requests}


def test_an_endpoint_pulls_its_image_and_reads_its_model_with_the_model_role() -> None:
    image = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlp-prod/serving@sha256:" + "a" * 64
    model = {
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": f"s3://{BUCKET}/endpoint-models/m/1/abc/model.tar.gz",
        },
        "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
    }
    calls = endpoint_calls(model, "mlp-prod-fraud-classifier", "champion", FakeAccount())
    assert calls.role_arn == ROLE and calls.service == "sagemaker.amazonaws.com"
    repo = "arn:aws:ecr:eu-west-1:222222222222:repository/mlp-prod/serving"
    assert {
        ("ecr:BatchGetImage", repo),
        ("ecr:GetAuthorizationToken", "*"),
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/endpoint-models/m/1/abc/model.tar.gz"),
        ("kms:Decrypt", KEY),
        ("ec2:CreateNetworkInterface", "arn:aws:ec2:eu-west-1:222222222222:subnet/subnet-1"),
        (
            "logs:PutLogEvents",
            "arn:aws:logs:eu-west-1:222222222222:log-group:"
            "/aws/sagemaker/Endpoints/mlp-prod-fraud-classifier:log-stream:champion/i-0",
        ),
    } <= as_set(calls)


def test_a_training_job_lists_reads_writes_and_reads_the_client_secret() -> None:
    job = {
        "TrainingJobName": "job-1",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/"
            "mlp-prod/training@sha256:" + "b" * 64
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/datasets/fraud-v1/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/training-output"},
        "Environment": {"MLFLOW_CLIENT_SECRET_ID": "mlp-prod/mlflow-client"},
    }
    calls = training_job_calls(job, FakeAccount())
    listed = [r for r in calls.requests if r.action == "s3:ListBucket"]
    assert [dict(r.context) for r in listed] == [{"s3:prefix": "datasets/fraud-v1/train"}]
    assert {
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/datasets/fraud-v1/train/part-0"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/training-output/job-1/output/model.tar.gz"),
        ("kms:GenerateDataKey", KEY),
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:222222222222:secret:mlp-prod/mlflow-client-AbCdEf",
        ),
    } <= as_set(calls)


def test_a_task_pulls_and_injects_with_the_execution_role_and_serves_with_the_task_role() -> None:
    secret = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:mlp-prod/database-Xy12Ab"
    definition = {
        "family": "mlp-prod-mlflow",
        "executionRoleArn": "arn:aws:iam::222222222222:role/exec",
        "taskRoleArn": "arn:aws:iam::222222222222:role/task",
        "containerDefinitions": [
            {
                "name": "mlflow",
                "image": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/mlp-prod/mlflow@sha256:"
                + "c" * 64,
                "command": ["serve"],
                "secrets": [{"name": "MLFLOW_DB_PASSWORD", "valueFrom": secret + ":password::"}],
                "environment": [
                    {
                        "name": "MLFLOW_ARTIFACTS_DESTINATION",
                        "value": f"s3://{BUCKET}/mlflow-artifacts",
                    }
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/mlp-prod/mlflow",
                        "awslogs-stream-prefix": "serve",
                    },
                },
            }
        ],
    }
    execution, task = task_calls(definition, FakeAccount())
    assert execution.role_arn.endswith("/exec") and task.role_arn.endswith("/task")
    assert ("secretsmanager:GetSecretValue", secret) in as_set(execution)
    assert (
        "ecr:BatchGetImage",
        "arn:aws:ecr:eu-west-1:222222222222:repository/mlp-prod/mlflow",
    ) in as_set(execution)
    assert {a for a, _ in as_set(task)} == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    # The migrate command touches no artifacts: its task role is asked for nothing.
    definition["containerDefinitions"][0]["command"] = ["migrate"]
    assert [c.role_arn for c in task_calls(definition, FakeAccount())] == [execution.role_arn]


def test_unused_grants_lists_allowed_actions_no_request_used() -> None:
    p = policy(
        READ_MODELS,
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:PutLogEvents", "logs:Create*"],
            "Resource": "*",
        },
    )
    resource = f"arn:aws:s3:::{BUCKET}/training-output/x"
    decision = evaluate(Request(ROLE, "s3:GetObject", resource), p)
    logs = evaluate(Request(ROLE, "logs:CreateLogStream", "arn:aws:logs:x"), p)
    used: dict[str, set[str]] = {}
    for d in (decision, logs):
        for label in d.statements:
            used.setdefault(label, set()).add(d.request.action)
    assert unused_grants(p, used) == ["ExecutionPolicy#Logs: logs:PutLogEvents"]
