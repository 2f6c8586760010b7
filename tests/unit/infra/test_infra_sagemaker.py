"""SageMaker stack: least-privilege execution role and the jobs' security group."""

from __future__ import annotations

import json


def _statements(synth) -> dict[str, dict]:
    (policy,) = synth.template("sagemaker").find_resources("AWS::IAM::Policy").values()
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_role_is_assumed_by_sagemaker_only(each_env):
    (role,) = each_env.template("sagemaker").find_resources("AWS::IAM::Role").values()
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]


def test_s3_access_is_limited_to_the_two_prefixes(each_variant):
    env = each_variant.settings
    training = env.training
    statements = _statements(each_variant)
    s3_statements = [
        s for s in statements.values() if any(a.startswith("s3:") for a in _as_list(s["Action"]))
    ]
    resources = json.dumps([s["Resource"] for s in s3_statements])
    assert f"{env.bucket_name}/{training.dataset_prefix}/*" in resources
    assert f"{env.bucket_name}/{training.output_prefix}/*" in resources
    assert "mlflow-artifacts" not in resources
    assert training.dataset_prefix not in json.dumps(statements["WriteOutput"]["Resource"])
    assert statements["ListOwnPrefixes"]["Condition"]["StringLike"]["s3:prefix"]
    for s in s3_statements:
        assert all(
            a in {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
            for a in _as_list(s["Action"])
        )


def test_ecr_pull_only_from_our_repositories(each_env):
    statements = _statements(each_env)
    pull = statements["PullOwnImages"]
    assert set(_as_list(pull["Action"])) == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    }
    resources = json.dumps(pull["Resource"])
    assert "MlflowRepository" in resources and "TrainingRepository" in resources
    assert statements["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"


def test_logs_only_in_sagemaker_log_groups(each_env):
    resources = json.dumps(_statements(each_env)["OwnLogs"]["Resource"])
    assert resources.count("log-group:/aws/sagemaker/") == 2
    assert "log-group:/aws/sagemaker/TrainingJobs:*" in resources
    assert "log-group:/aws/sagemaker/Endpoints/*" in resources


def test_job_uses_what_the_training_code_reads(each_env):
    """The role, subnets and secret named by the outputs the SageMaker runner reads."""
    env = each_env.settings
    outputs = {
        part: set(each_env.template_json(part).get("Outputs", {}))
        for part in ("sagemaker", "network", "data", "mlflow")
    }
    assert {"ExecutionRoleArn", "SecurityGroupId"} <= outputs["sagemaker"]
    assert "PrivateSubnetIds" in outputs["network"]
    assert "BucketName" in outputs["data"]
    assert {"MlflowUrl", "TrainingRepositoryUri"} <= outputs["mlflow"]
    each_env.template("mlflow").has_resource_properties(
        "AWS::SecretsManager::Secret", {"Name": env.client_secret_name}
    )


def test_reads_only_the_mlflow_client_secret(each_env):
    statements = _statements(each_env)
    secret_statements = [
        s
        for s in statements.values()
        if any(a.startswith("secretsmanager:") for a in _as_list(s["Action"]))
    ]
    assert len(secret_statements) == 1
    resource = json.dumps(secret_statements[0]["Resource"])
    assert "ClientSecret" in resource
    assert "Admin" not in resource and "Database" not in resource and "*" not in resource


def test_kms_only_the_artifact_key(each_env):
    statements = _statements(each_env)
    kms = [
        s for s in statements.values() if any(a.startswith("kms:") for a in _as_list(s["Action"]))
    ]
    assert len(kms) == 1
    assert "ArtifactsKey" in json.dumps(kms[0]["Resource"])


def test_no_statement_grants_a_service_wildcard(each_env):
    for statement in _statements(each_env).values():
        for action in _as_list(statement["Action"]):
            assert not action.endswith(":*") and action != "*", action


def test_jobs_security_group_reaches_the_alb(each_variant):
    t = each_variant.template("sagemaker")
    rules = t.find_resources("AWS::EC2::SecurityGroupIngress")
    to_alb = [
        r["Properties"]
        for r in rules.values()
        if "LoadBalancerSecurityGroup" in json.dumps(r["Properties"]["GroupId"])
    ]
    mlflow = each_variant.settings.mlflow
    # The fixtures hand in a certificate exactly when the environment does not allow HTTP.
    https = mlflow.certificate_arn is not None or not mlflow.allow_http
    expected_ports = ([443] if https else []) + ([80] if mlflow.allow_http else [])
    assert sorted(r["FromPort"] for r in to_alb) == sorted(expected_ports)
    assert all("JobsSecurityGroup" in json.dumps(r["SourceSecurityGroupId"]) for r in to_alb)
    (sg,) = t.find_resources("AWS::EC2::SecurityGroup").values()
    egress = sg["Properties"]["SecurityGroupEgress"]
    assert {
        "CidrIp": "0.0.0.0/0",
        "Description": "HTTPS to AWS APIs and MLflow",
        "FromPort": 443,
        "IpProtocol": "tcp",
        "ToPort": 443,
    } in egress
    assert not any(rule.get("IpProtocol") == "-1" and rule.get("CidrIp") for rule in egress)
