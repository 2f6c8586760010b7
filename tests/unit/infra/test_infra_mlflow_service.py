"""MLflow service stack: images by digest, secrets injection, ALB/TLS, health, scaling."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match
from conftest import REPO_ROOT, TEST_DIGEST, synthesize, test_certificate_arn
from sg_rules import egress, group_of

from infra.app import build_app
from infra.stacks.mlflow_service import RELEASES_KEPT
from mlplatform.config import load_environments
from mlplatform.errors import ConfigError
from mlplatform.names import ARTIFACTS_PREFIX, CONTAINER_RDS_CA_BUNDLE, MLFLOW_PORT
from mlplatform.release.cdk_context import (
    CONTEXT_CERTIFICATE_ARN,
    CONTEXT_IMAGE_DIGEST,
    CONTEXT_SERVICE_IMAGE_DIGEST,
    NO_SERVICE_IMAGE,
    resolve,
)
from mlplatform.release.ecr_push import RELEASE_TAG_PREFIX, release_tag

DATABASE_VARIABLES = {"MLFLOW_DB_USERNAME", "MLFLOW_DB_PASSWORD"}
# What the migrate task creates MLflow's own database user from (it logs in as the master).
APP_LOGIN_VARIABLES = {"MLFLOW_APP_DB_USERNAME", "MLFLOW_APP_DB_PASSWORD"}
SECRET_VARIABLES = DATABASE_VARIABLES | {
    "MLFLOW_AUTH_ADMIN_USERNAME",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
}


def _containers(synth) -> dict[str, dict]:
    """Container definition by task family."""
    found = {}
    for res in synth.template("mlflow").find_resources("AWS::ECS::TaskDefinition").values():
        (container,) = res["Properties"]["ContainerDefinitions"]
        found[res["Properties"]["Family"]] = container
    return found


def _serve(synth) -> dict:
    return _containers(synth)[f"{synth.settings.name_prefix}-mlflow"]


def _env(container: dict) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_repositories_scan_on_push_with_immutable_tags(each_env):
    t = each_env.template("mlflow")
    repos = t.find_resources("AWS::ECR::Repository")
    names = {r["Properties"]["RepositoryName"] for r in repos.values()}
    prefix = each_env.settings.name_prefix
    assert names == {f"{prefix}/mlflow", f"{prefix}/training", f"{prefix}/serving"}
    for repo in repos.values():
        assert repo["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert repo["Properties"]["ImageTagMutability"] == "IMMUTABLE"


def test_lifecycle_expires_only_old_tagged_releases(each_env):
    """Issue 10: an age rule on untagged images deleted what services and endpoints ran (the kit
    pushed by digest only). Every push is tagged release-…; only a count of those expires."""
    for repo in each_env.template("mlflow").find_resources("AWS::ECR::Repository").values():
        policy = json.loads(repo["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
        (rule,) = policy["rules"]
        assert rule["selection"] == {
            "tagStatus": "tagged",
            "tagPrefixList": [RELEASE_TAG_PREFIX],
            "countType": "imageCountMoreThan",
            "countNumber": RELEASES_KEPT,
        }
        assert RELEASES_KEPT >= 20
        assert release_tag("sha256:" + "a" * 64).startswith(RELEASE_TAG_PREFIX)


def test_serve_is_replaced_when_its_database_login_fails(each_env):
    """Issue 10: /health answers without the database, so a task whose injected password was
    rotated away stayed in service. ECS now runs the server's own login check."""
    containers = _containers(each_env)
    serve = _serve(each_env)
    assert serve["HealthCheck"] == {
        "Command": ["CMD", "python", "-m", "mlflow_server", "health"],
        "Interval": 30,
        "Timeout": 10,
        "Retries": 3,
        "StartPeriod": 120,
    }
    assert {"Name": "MLFLOW_AUTH_CONFIG_DIR", "Value": "/tmp/mlflow-auth"} in serve["Environment"]
    migrate = containers[f"{each_env.settings.name_prefix}-mlflow-migrate"]
    assert "HealthCheck" not in migrate  # a one-off task: its exit code is its health


def test_cluster_has_container_insights(each_env):
    each_env.template("mlflow").has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterSettings": [
                {"Name": "containerInsights", "Value": Match.string_like_regexp("enabled|enhanced")}
            ]
        },
    )


def test_service_and_migrate_run_the_image_by_digest(each_env):
    containers = _containers(each_env)
    assert len(containers) == 2
    for container in containers.values():
        image = json.dumps(container["Image"])
        assert f"@{TEST_DIGEST}" in image
        assert ":latest" not in image


def test_migrate_is_a_separate_one_off_task_definition(each_env):
    prefix = each_env.settings.name_prefix
    containers = _containers(each_env)
    assert containers[f"{prefix}-mlflow"]["Command"] == ["serve"]
    assert containers[f"{prefix}-mlflow-migrate"]["Command"] == ["migrate"]
    # Only the service runs the migrate-free "serve" definition; nothing keeps migrate running.
    (service,) = each_env.template("mlflow").find_resources("AWS::ECS::Service").values()
    assert "Migrate" not in json.dumps(service["Properties"]["TaskDefinition"])


OLD_DIGEST = "sha256:" + "0c" * 32


def _release(prod, tmp_path, service_digest: str):
    """prod synthesized as `invoke deploy`'s first phase: migrate on TEST_DIGEST."""
    return synthesize(
        prod.settings, tmp_path, context={CONTEXT_SERVICE_IMAGE_DIGEST: service_digest}
    )


def test_release_first_phase_keeps_the_service_on_its_running_image(prod, tmp_path):
    release = _release(prod, tmp_path, OLD_DIGEST)
    prefix = prod.settings.name_prefix
    containers = _containers(release)
    assert f"@{OLD_DIGEST}" in json.dumps(containers[f"{prefix}-mlflow"]["Image"])
    assert f"@{TEST_DIGEST}" in json.dumps(containers[f"{prefix}-mlflow-migrate"]["Image"])
    outputs = release.template_json("mlflow")["Outputs"]
    assert outputs["ImageDigest"]["Value"] == TEST_DIGEST
    assert outputs["ServiceImageDigest"]["Value"] == OLD_DIGEST
    (service,) = release.template("mlflow").find_resources("AWS::ECS::Service").values()
    assert service["Properties"]["DesiredCount"] == prod.settings.mlflow.min_tasks


def test_first_deploy_creates_the_service_with_no_task_until_migrated(prod, tmp_path):
    release = _release(prod, tmp_path, NO_SERVICE_IMAGE)
    template = release.template("mlflow")
    (service,) = template.find_resources("AWS::ECS::Service").values()
    assert service["Properties"]["DesiredCount"] == 0
    # Autoscaling would otherwise raise the count to its floor before the migration.
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 0, "MaxCapacity": prod.settings.mlflow.max_tasks},
    )
    assert release.template_json("mlflow")["Outputs"]["ServiceImageDigest"]["Value"] == "none"


def test_the_release_records_its_training_and_serving_images_as_outputs(prod, tmp_path):
    outputs = prod.template_json("mlflow")["Outputs"]
    # Before a release pushed them: "none", never a made-up digest.
    assert outputs["TrainingImageDigest"]["Value"] == "none"
    assert outputs["ServingImageDigest"]["Value"] == "none"
    # One record of every source's image, sorted by source name.
    training = f"forecast=sha256:{'6' * 64},fraud=sha256:{'7' * 64}"
    serving = f"fraud=sha256:{'8' * 64}"
    release = synthesize(
        prod.settings,
        tmp_path,
        context={"training_image_digests": training, "serving_image_digests": serving},
    )
    outputs = release.template_json("mlflow")["Outputs"]
    assert outputs["TrainingImageDigest"]["Value"] == training
    assert outputs["ServingImageDigest"]["Value"] == serving


def test_credentials_are_injected_from_secrets_manager_never_plain(each_variant):
    prefix = each_variant.settings.name_prefix
    expected = {
        f"{prefix}-mlflow": SECRET_VARIABLES,
        f"{prefix}-mlflow-migrate": DATABASE_VARIABLES | APP_LOGIN_VARIABLES,
    }
    for family, container in _containers(each_variant).items():
        secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
        assert set(secrets) == expected[family]
        assert secrets["MLFLOW_DB_USERNAME"].endswith(':username::"]]}')
        assert secrets["MLFLOW_DB_PASSWORD"].endswith(':password::"]]}')
        plain = _env(container)
        assert not SECRET_VARIABLES & set(plain)
        assert not any("PASSWORD" in name or "SECRET" in name for name in plain)


def test_admin_and_flask_secrets_are_generated_with_configured_names(each_env):
    t = each_env.template("mlflow")
    env = each_env.settings
    t.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": env.admin_secret_name,
            "GenerateSecretString": Match.object_like(
                {
                    "GenerateStringKey": "password",
                    "SecretStringTemplate": json.dumps({"username": env.mlflow.admin_username}),
                }
            ),
        },
    )
    t.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": env.flask_secret_name,
            "GenerateSecretString": Match.object_like({"PasswordLength": 64}),
        },
    )


def test_plain_environment_follows_the_container_contract(each_variant):
    env = each_variant.settings
    plain = _env(_serve(each_variant))
    assert plain["MLFLOW_DB_ENGINE"] == env.database.engine
    assert plain["MLFLOW_DB_NAME"] == env.database.name
    assert plain["MLFLOW_WORKERS"] == str(env.mlflow.workers)
    assert plain["MLFLOW_AUTH_CACHE_TTL_SECONDS"] == str(env.mlflow.auth_cache_ttl_seconds)
    assert plain["MLFLOW_HOST"] == "0.0.0.0"
    assert plain["MLFLOW_PORT"] == str(MLFLOW_PORT)
    assert plain["AWS_DEFAULT_REGION"] == env.region
    assert json.dumps(plain["MLFLOW_ARTIFACTS_DESTINATION"]).endswith(f'/{ARTIFACTS_PREFIX}"]]}}')
    assert {"MLFLOW_DB_HOST", "MLFLOW_DB_PORT"} <= set(plain)
    # TLS to RDS, verified against the bundle the image carries.
    assert plain["MLFLOW_DB_SSL_CA"] == CONTAINER_RDS_CA_BUNDLE
    dockerfile = (REPO_ROOT / "mlflow_server" / "Dockerfile").read_text(encoding="utf-8")
    assert "\nCOPY mlflow_server/ /app/mlflow_server/\n" in dockerfile
    assert CONTAINER_RDS_CA_BUNDLE == "/app/mlflow_server/rds-ca-bundle.pem"
    assert (REPO_ROOT / "mlflow_server" / "rds-ca-bundle.pem").is_file()


def test_allowed_hosts_include_the_alb_and_configured_names(each_variant):
    env = each_variant.settings
    hosts = json.dumps(_env(_serve(each_variant))["MLFLOW_ALLOWED_HOSTS"])
    assert "DNSName" in hosts
    for host in env.mlflow.allowed_hosts + (
        [env.mlflow.domain_name] if env.mlflow.domain_name else []
    ):
        assert host in hosts


def test_alb_is_internal_by_default(each_variant):
    scheme = "internal" if each_variant.settings.mlflow.internal else "internet-facing"
    each_variant.template("mlflow").has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": scheme}
    )


def test_https_with_certificate_and_http_redirect(each_env):
    t = each_env.template("mlflow")
    t.resource_count_is("AWS::ElasticLoadBalancingV2::Listener", 2)
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": Match.string_like_regexp(":acm:")}],
            "SslPolicy": Match.string_like_regexp("TLS13"),
        },
    )
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "DefaultActions": [
                Match.object_like(
                    {"Type": "redirect", "RedirectConfig": Match.object_like({"Protocol": "HTTPS"})}
                )
            ],
        },
    )


def test_plain_http_only_where_the_environment_allows_it(sandbox):
    t = sandbox.template("mlflow")
    t.resource_count_is("AWS::ElasticLoadBalancingV2::Listener", 1)
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [Match.object_like({"Type": "forward"})],
        },
    )


def test_alb_drops_invalid_headers_and_logs_access(each_env):
    each_env.template("mlflow").has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [
                    {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.enabled", "Value": "true"},
                ]
            )
        },
    )


def test_target_health_check_is_health_on_the_mlflow_port(each_env):
    each_env.template("mlflow").has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": MLFLOW_PORT,
            "TargetType": "ip",
            "HealthCheckPath": "/health",
            "Matcher": {"HttpCode": "200"},
        },
    )


def test_tasks_admit_only_the_alb_and_reach_the_database(each_env):
    t = each_env.template("mlflow")
    ingress = t.find_resources("AWS::EC2::SecurityGroupIngress")
    to_tasks = [
        r["Properties"] for r in ingress.values() if r["Properties"]["FromPort"] == MLFLOW_PORT
    ]
    assert len(to_tasks) == 1
    assert "LoadBalancerSecurityGroup" in json.dumps(to_tasks[0]["SourceSecurityGroupId"])
    to_db = [r["Properties"] for r in ingress.values() if r["Properties"]["FromPort"] == 3306]
    assert len(to_db) == 1 and "ServiceSecurityGroup" in json.dumps(
        to_db[0]["SourceSecurityGroupId"]
    )


def test_alb_ingress_is_the_vpc_when_internal(each_variant):
    env = each_variant.settings
    (sg,) = (
        each_variant.template("mlflow")
        .find_resources(
            "AWS::EC2::SecurityGroup",
            {"Properties": {"GroupDescription": Match.string_like_regexp("MLflow ALB")}},
        )
        .values()
    )
    cidrs = {rule["CidrIp"] for rule in sg["Properties"]["SecurityGroupIngress"]}
    assert cidrs == ({env.network.cidr} if env.mlflow.internal else {"0.0.0.0/0"})


def test_the_service_runs_on_fargate_spot_exactly_where_configured(each_env):
    """[E.mlflow] fargate_spot (staging): the service's tasks on FARGATE_SPOT; else on-demand."""
    template = each_env.template("mlflow")
    (service,) = template.find_resources("AWS::ECS::Service").values()
    props = service["Properties"]
    associations = template.find_resources("AWS::ECS::ClusterCapacityProviderAssociations")
    if each_env.settings.mlflow.fargate_spot:
        assert props["CapacityProviderStrategy"] == [
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 1}
        ]
        assert "LaunchType" not in props  # a strategy and a launch type exclude each other
        ((association,),) = [list(associations.values())]
        assert set(association["Properties"]["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    else:
        assert props["LaunchType"] == "FARGATE" and "CapacityProviderStrategy" not in props
        assert associations == {}


def test_deployment_circuit_breaker_rolls_back(each_env):
    each_env.template("mlflow").has_resource_properties(
        "AWS::ECS::Service",
        {
            "DeploymentConfiguration": Match.object_like(
                {
                    "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                    "MinimumHealthyPercent": 100,
                }
            ),
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            },
        },
    )


def test_target_tracking_autoscaling_between_configured_bounds(each_env):
    mlflow = each_env.settings.mlflow
    t = each_env.template("mlflow")
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": mlflow.min_tasks, "MaxCapacity": mlflow.max_tasks},
    )
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": mlflow.scale_cpu_percent,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                }
            ),
        },
    )


def test_log_group_has_retention(each_env):
    each_env.template("mlflow").has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/{each_env.settings.name_prefix}/mlflow",
            "RetentionInDays": each_env.settings.mlflow.log_retention_days,
        },
    )


def test_task_role_touches_only_the_artifact_prefix(each_env):
    t = each_env.template("mlflow")
    policies = t.find_resources(
        "AWS::IAM::Policy", {"Properties": {"PolicyName": Match.string_like_regexp("Artifacts")}}
    )
    (policy,) = policies.values()
    text = json.dumps(policy["Properties"]["PolicyDocument"])
    assert f"{each_env.settings.bucket_name}/{ARTIFACTS_PREFIX}/*" in text
    assert '"s3:*"' not in text and "s3:GetObject*" not in text
    # The migrate task's role has no artifact access at all.
    assert "Migrate" not in json.dumps(policy["Properties"]["Roles"])


def _logical_id(template, resource_type: str, construct_path_part: str) -> str:
    """The logical id of the one resource of ``resource_type`` whose id contains the part."""
    (found,) = [rid for rid in template.find_resources(resource_type) if construct_path_part in rid]
    return found


def _role_ids(task_definition: dict) -> set[str]:
    props = task_definition["Properties"]
    return {props[k]["Fn::GetAtt"][0] for k in ("ExecutionRoleArn", "TaskRoleArn") if k in props}


def test_migrate_task_gets_the_database_logins_only(each_variant):
    """`python -m mlflow_server migrate` logs in as the master and creates MLflow's own user.

    It gets those two database logins and nothing else: neither its container nor any policy of
    its task or execution role names the admin, Flask or client secret; the serve task gets
    MLflow's own login (never the master's) and the MLflow credentials.
    """
    t = each_variant.template("mlflow")
    template = each_variant.template_json("mlflow")
    prefix = each_variant.settings.name_prefix
    containers = _containers(each_variant)
    container = containers[f"{prefix}-mlflow-migrate"]
    secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
    assert set(secrets) == DATABASE_VARIABLES | APP_LOGIN_VARIABLES
    assert "DatabaseSecret" in secrets["MLFLOW_DB_PASSWORD"]  # the RDS master (data stack)
    assert "MlflowDatabaseSecret" in secrets["MLFLOW_APP_DB_PASSWORD"]
    serve = {s["Name"]: json.dumps(s["ValueFrom"]) for s in _serve(each_variant)["Secrets"]}
    assert "MlflowDatabaseSecret" in serve["MLFLOW_DB_PASSWORD"]
    (migrate,) = t.find_resources(
        "AWS::ECS::TaskDefinition", {"Properties": {"Family": f"{prefix}-mlflow-migrate"}}
    ).values()
    app_secrets = {_logical_id(t, "AWS::SecretsManager::Secret", n) for n in ("Admin", "Flask")}
    app_secrets.add(_logical_id(t, "AWS::SecretsManager::Secret", "Client"))
    roles = _role_ids(migrate)
    policies = [
        p["Properties"]
        for p in template["Resources"].values()
        if p["Type"] == "AWS::IAM::Policy"
        and roles & {r["Ref"] for r in p["Properties"]["Roles"] if "Ref" in r}
    ]
    text = json.dumps(policies) + json.dumps(container)
    assert policies and "secretsmanager:GetSecretValue" in text
    assert not [s for s in app_secrets if s in text]


def test_app_secrets_are_retained_like_the_database(each_env):
    """A stack delete must not take the MLflow users' credentials while their table survives."""
    t = each_env.template("mlflow")
    env = each_env.settings
    names = (env.admin_secret_name, env.flask_secret_name, env.client_secret_name)
    for name in names:
        t.has_resource(
            "AWS::SecretsManager::Secret",
            {
                "Properties": Match.object_like({"Name": name}),
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
            },
        )
    t.resource_count_is("AWS::SecretsManager::Secret", len(names))


def _smg4_reasons(synth) -> dict[str, str]:
    meta = json.loads(
        (synth.outdir / f"{synth.settings.name_prefix}-mlflow.metadata.json").read_text()
    )
    return {
        path: reason
        for path, entries in meta.items()
        for entry in entries
        if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry["data"].items()
        if rule == "AwsSolutions::AwsSolutions-SMG4"
    }


def test_unrotated_secret_reasons_say_what_a_new_value_would_do(prod):
    """Each SMG4 reason states the truth for its secret (MLflow reads admin_password only once)."""
    reasons = _smg4_reasons(prod)
    by_secret = {
        part: [r for p, r in reasons.items() if f"/{part}" in p]
        for part in ("AdminSecret", "FlaskSecret", "ClientSecret")
    }
    assert all(len(r) == 1 for r in by_secret.values()), reasons
    (admin,), (flask,), (client,) = by_secret.values()
    assert "only when it creates the admin user" in admin
    assert "update-password" in admin and "update-password" in client
    assert "session" in flask
    assert not any("re-creating the secret" in r for r in reasons.values())


def test_domain_gets_a_private_zone_and_an_alias_to_the_alb(each_variant):
    env = each_variant.settings
    domain = env.mlflow.domain_name
    assert domain, "every environment of the suite names its domain"
    t = each_variant.template("mlflow")
    t.resource_count_is("AWS::Route53::HostedZone", 1)
    t.has_resource_properties(
        "AWS::Route53::HostedZone",
        {"Name": f"{domain}.", "VPCs": [{"VPCId": Match.any_value(), "VPCRegion": env.region}]},
    )
    zone = _logical_id(t, "AWS::Route53::HostedZone", "")
    alb = _logical_id(t, "AWS::ElasticLoadBalancingV2::LoadBalancer", "")
    t.has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "Name": f"{domain}.",
            "Type": "A",
            "HostedZoneId": {"Ref": zone},
            "AliasTarget": {
                "DNSName": Match.any_value(),
                "HostedZoneId": {"Fn::GetAtt": [alb, "CanonicalHostedZoneID"]},
            },
        },
    )
    outputs = each_variant.template_json("mlflow")["Outputs"]
    scheme = "http" if env.mlflow.certificate_arn is None and env.mlflow.allow_http else "https"
    assert outputs["MlflowUrl"]["Value"] == f"{scheme}://{domain}"


@pytest.mark.parametrize("name", ["local", "staging", "prod"])
def test_certificate_without_domain_fails_in_one_line(name):
    """A certificate from context (`invoke deploy --certificate-arn`) needs the name it covers."""
    env = load_environments(REPO_ROOT / "environments.toml")[name]
    nameless = env.model_copy(
        update={"mlflow": env.mlflow.model_copy(update={"domain_name": None})}
    )
    with pytest.raises(ConfigError) as err:
        resolve(nameless, image_digest=TEST_DIGEST, certificate_arn=test_certificate_arn(env))
    message = str(err.value)
    assert message.startswith(f"[{name}.mlflow] domain_name is not set")
    assert "certificate" in message and "\n" not in message
    app = cdk.App(
        context={
            CONTEXT_IMAGE_DIGEST: TEST_DIGEST,
            CONTEXT_CERTIFICATE_ARN: test_certificate_arn(env),
        }
    )
    with pytest.raises(ConfigError, match=rf"^\[{name}\.mlflow\] domain_name is not set"):
        build_app({name: nameless}, app)


def _task_group(synth) -> str:
    (service,) = synth.template("mlflow").find_resources("AWS::ECS::Service").values()
    (group,) = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"][
        "SecurityGroups"
    ]
    return group_of(group)


def test_tasks_reach_only_the_database_and_https(each_variant):
    # Serve and migrate tasks share the group (the migrate RunTask uses TaskSecurityGroupId).
    group = _task_group(each_variant)
    outputs = each_variant.template_json("mlflow")["Outputs"]
    assert outputs["TaskSecurityGroupId"]["Value"] == {"Fn::GetAtt": [group, "GroupId"]}
    rules = egress(each_variant, "mlflow", group)
    assert not [r for r in rules if r[0] == "-1"], rules
    database = [r for r in rules if "DatabaseSecurityGroup" in r[3]]
    assert [r[:3] for r in database] == [("tcp", 3306, 3306)], rules
    assert database[0][3].startswith("import:")
    # 443 anywhere: S3 (artifacts, ECR layers) through the gateway endpoint has no address a
    # rule could name without a lookup; the interface endpoints and, in prod, NAT take the rest.
    assert [r for r in rules if r not in database] == [("tcp", 443, 443, "0.0.0.0/0")]


def test_alb_reaches_only_the_tasks_on_the_mlflow_port(each_variant):
    (alb,) = each_variant.template("mlflow").find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("MLflow ALB")}},
    )
    rules = egress(each_variant, "mlflow", alb)
    assert rules == [("tcp", MLFLOW_PORT, MLFLOW_PORT, f"ref:{_task_group(each_variant)}")]
