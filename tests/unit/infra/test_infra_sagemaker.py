"""SageMaker stack: least-privilege training and endpoint roles and the jobs' security group."""

from __future__ import annotations

import json

from sg_rules import egress

from mlplatform.roster import load_roster


def _statements(synth, policy: str = "ExecutionPolicy") -> dict[str, dict]:
    policies = synth.template("sagemaker").find_resources("AWS::IAM::Policy")
    (found,) = [p for logical, p in policies.items() if logical.startswith(policy)]
    return {s["Sid"]: s for s in found["Properties"]["PolicyDocument"]["Statement"]}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_roles_are_assumed_by_sagemaker_only(each_env):
    roles = each_env.template("sagemaker").find_resources("AWS::IAM::Role")
    prefix = each_env.settings.name_prefix
    # teams.toml's teams with a model this environment configures get a training role each.
    teams = [
        name
        for name, team in load_roster().teams.items()
        if set(team.models) & set(each_env.settings.models)
    ]
    assert sorted(r["Properties"]["RoleName"] for r in roles.values()) == sorted(
        [f"{prefix}-sagemaker-endpoint", f"{prefix}-sagemaker-execution"]
        + [f"{prefix}-team-{team}-training" for team in teams]
    )
    assert teams  # the repository's teams file gives fraud-classifier's team a role
    for role in roles.values():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert "ManagedPolicyArns" not in role["Properties"]


def test_s3_access_is_limited_to_the_three_prefixes(each_variant):
    """Channels read-only, archives write-only, and each job's checkpoints both ways."""
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
    listed = statements["ListOwnPrefixes"]["Condition"]["StringLike"]["s3:prefix"]
    assert f"{training.checkpoint_prefix}/*" in listed
    assert training.output_prefix not in json.dumps(statements["ReadData"]["Resource"])
    sync = statements["SyncCheckpoints"]
    assert set(_as_list(sync["Action"])) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    }
    assert json.dumps(sync["Resource"]).count(f"{training.checkpoint_prefix}/*") == 1
    assert training.dataset_prefix not in json.dumps(sync["Resource"])
    for s in s3_statements:
        assert all(
            a in {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
            for a in _as_list(s["Action"])
        )


def test_ecr_pull_only_from_each_roles_own_repository(each_env):
    for policy, sid, repository in (
        ("ExecutionPolicy", "PullOwnImages", "TrainingRepository"),
        ("EndpointPolicy", "PullServingImage", "ServingRepository"),
    ):
        statements = _statements(each_env, policy)
        pull = statements[sid]
        assert set(_as_list(pull["Action"])) == {
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        }
        resources = json.dumps(pull["Resource"])
        assert resources.count("Repository") == 1 and repository in resources, resources
        assert statements["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"


def test_logs_only_in_each_roles_sagemaker_log_group(each_env):
    training = json.dumps(_statements(each_env)["OwnLogs"]["Resource"])
    endpoint = json.dumps(_statements(each_env, "EndpointPolicy")["OwnLogs"]["Resource"])
    assert training.count("log-group:") == endpoint.count("log-group:") == 1
    assert "log-group:/aws/sagemaker/TrainingJobs:*" in training
    assert "log-group:/aws/sagemaker/Endpoints/*" in endpoint


def test_endpoint_role_reads_only_model_archives(each_env):
    """Issue 10: endpoints ran with the training role, which could not read endpoint-models/."""
    env = each_env.settings
    statements = _statements(each_env, "EndpointPolicy")
    assert set(statements) == {
        "ReadModels",
        "PullServingImage",
        "OwnLogs",
        "BucketKey",
        "EcrLogin",
        "SageMakerMetrics",
        "VpcNetworkInterfaces",
    }
    assert statements["ReadModels"]["Action"] == "s3:GetObject"
    assert f"{env.bucket_name}/endpoint-models/*" in json.dumps(
        statements["ReadModels"]["Resource"]
    )
    each_env.template("sagemaker").has_output("EndpointRoleArn", {})


def test_job_uses_what_the_training_code_reads(each_env):
    """The role, subnets and secret named by the outputs the SageMaker runner reads."""
    env = each_env.settings
    outputs = {
        part: set(each_env.template_json(part).get("Outputs", {}))
        for part in ("sagemaker", "network", "data", "mlflow")
    }
    assert {"ExecutionRoleArn", "EndpointRoleArn", "SecurityGroupId"} <= outputs["sagemaker"]
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
    for policy in ("ExecutionPolicy", "EndpointPolicy"):
        statements = _statements(each_env, policy)
        kms = [
            s
            for s in statements.values()
            if any(a.startswith("kms:") for a in _as_list(s["Action"]))
        ]
        assert len(kms) == 1
        assert "ArtifactsKey" in json.dumps(kms[0]["Resource"])


def test_no_statement_grants_a_service_wildcard(each_env):
    for policy in ("ExecutionPolicy", "EndpointPolicy"):
        for statement in _statements(each_env, policy).values():
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


def test_jobs_egress_is_https_the_alb_and_the_jobs_own_peers(each_variant):
    t = each_variant.template("sagemaker")
    (group,) = t.find_resources("AWS::EC2::SecurityGroup")
    rules = egress(each_variant, "sagemaker", group)
    mlflow = each_variant.settings.mlflow
    alb = [r for r in rules if r[3].startswith("import:")]
    # HTTPS to the ALB is inside the 443 rule; a plain-HTTP listener needs its own.
    assert [r[:3] for r in alb] == ([("tcp", 80, 80)] if mlflow.allow_http else [])
    assert all("LoadBalancerSecurityGroup" in r[3] for r in alb)
    assert sorted(r for r in rules if r not in alb) == sorted(
        [("tcp", 443, 443, "0.0.0.0/0"), ("-1", None, None, f"ref:{group}")]
    )
