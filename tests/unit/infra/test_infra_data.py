"""Data stack: RDS security properties and the artifact bucket's protections."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match
from conftest import synthesize
from sg_rules import NO_TRAFFIC, destination, egress, group_of

from infra.stacks.data import DB_PORT, ENGINE_VERSIONS, MASTER_USER, MLFLOW_USER
from mlplatform.config import Environment, load_environments


def _db(synth) -> dict:
    (db,) = synth.template("data").find_resources("AWS::RDS::DBInstance").values()
    return db


def test_database_engine_and_pinned_minor_come_from_config(each_variant):
    env = each_variant.settings.database
    props = _db(each_variant)["Properties"]
    assert props["Engine"] == env.engine
    assert props["EngineVersion"] == ENGINE_VERSIONS[(env.engine, env.version)]
    assert props["EngineVersion"].startswith(env.version + ".")
    assert props["AutoMinorVersionUpgrade"] is False


def test_database_is_private_encrypted_and_backed_up(each_variant):
    env = each_variant.settings.database
    props = _db(each_variant)["Properties"]
    assert props["PubliclyAccessible"] is False
    assert props["StorageEncrypted"] is True
    assert props["BackupRetentionPeriod"] == env.backup_retention_days
    assert props["MultiAZ"] is env.multi_az
    assert props["DeletionProtection"] is env.deletion_protection
    assert props["DBInstanceClass"] == env.instance_class
    assert props["AllocatedStorage"] == str(env.allocated_storage_gib)


def test_database_subnets_are_the_private_ones(each_env):
    (group,) = each_env.template("data").find_resources("AWS::RDS::DBSubnetGroup").values()
    imports = [ref["Fn::ImportValue"] for ref in group["Properties"]["SubnetIds"]]
    assert imports and all("privateSubnet" in name for name in imports)


def test_parameter_group_requires_tls_and_lets_migrations_create_triggers(each_variant):
    t = each_variant.template("data")
    t.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {
            "Parameters": {
                "log_bin_trust_function_creators": "1",
                # DB instances take 1 for ON (clusters' groups take ON).
                "require_secure_transport": "1",
            }
        },
    )
    (db,) = t.find_resources("AWS::RDS::DBInstance").values()
    assert "DBParameterGroupName" in db["Properties"]


def test_credentials_are_generated_into_secrets_manager_and_rotated(each_env):
    t = each_env.template("data")
    env = each_env.settings
    t.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": env.database_master_secret_name,
            "GenerateSecretString": Match.object_like({"GenerateStringKey": "password"}),
        },
    )
    t.resource_properties_count_is(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": f"rate({env.database.rotation_days} days)"}},
        2,
    )
    (db,) = t.find_resources("AWS::RDS::DBInstance").values()
    assert "{{resolve:secretsmanager:" in str(db["Properties"]["MasterUserPassword"])
    assert db["Properties"]["MasterUsername"] == MASTER_USER


def test_mlflow_has_its_own_login_rotated_by_alternating_users(each_env):
    """Issue 10 (defects 3 and 5): MLflow connected as the RDS master, whose single-user rotation
    cut running tasks off. Its own login names the master secret (the multi-user rotation clones
    the user with it) and is rotated by the multi-user function."""
    t = each_env.template("data")
    template = each_env.template_json("data")
    env = each_env.settings
    (login_id,) = t.find_resources(
        "AWS::SecretsManager::Secret", {"Properties": {"Name": env.database_secret_name}}
    )
    login = template["Resources"][login_id]["Properties"]["GenerateSecretString"]
    assert MLFLOW_USER in json.dumps(login["SecretStringTemplate"])
    assert "masterarn" in json.dumps(login["SecretStringTemplate"])
    apps = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Application"
    ]
    mappings = template["Mappings"]
    functions = sorted(
        mappings[a["Properties"]["Location"]["ApplicationId"]["Fn::FindInMap"][0]]["aws"][
            "applicationId"
        ].rsplit("/", 1)[-1]
        for a in apps
    )
    assert functions == [
        "SecretsManagerRDSMySQLRotationMultiUser",
        "SecretsManagerRDSMySQLRotationSingleUser",
    ]
    outputs = template["Outputs"]
    assert "MlflowDatabaseSecret" in json.dumps(outputs["DatabaseSecretArn"])
    assert "DatabaseMasterSecretArn" in outputs


def _artifact_bucket(synth) -> dict:
    buckets = synth.template("data").find_resources(
        "AWS::S3::Bucket", {"Properties": {"BucketName": synth.settings.bucket_name}}
    )
    assert len(buckets) == 1, "the artifact bucket must carry the configured name"
    return next(iter(buckets.values()))


def test_artifact_bucket_is_kms_encrypted_private_and_versioned(each_env):
    props = _artifact_bucket(each_env)["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "Fn::GetAtt" in rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    days = each_env.settings.artifacts.noncurrent_version_expiration_days
    assert any(
        r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == days
        for r in props["LifecycleConfiguration"]["Rules"]
    )
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]


def test_every_bucket_denies_plain_http(each_env):
    t = each_env.template("data")
    for logical_id in t.find_resources("AWS::S3::Bucket"):
        t.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": logical_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_kms_keys_rotate_and_outlive_the_stack(each_env):
    """The artifacts' key and the audit trail's."""
    t = each_env.template("data")
    keys = t.find_resources("AWS::KMS::Key")
    assert sorted(k.split("Key")[0] for k in keys) == ["Artifacts", "AuditTrail"]
    for key in keys.values():
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["DeletionPolicy"] == "Retain"


def _trail(synth) -> dict:
    (trail,) = synth.template("data").find_resources("AWS::CloudTrail::Trail").values()
    return trail["Properties"]


def test_the_audit_trail_records_management_and_artifact_data_events(each_env):
    trail = _trail(each_env)
    prefix = each_env.settings.name_prefix
    assert trail["TrailName"] == f"{prefix}-audit"
    assert trail["IsLogging"] is True and trail["EnableLogFileValidation"] is True
    assert trail["IsMultiRegionTrail"] is True and trail["IncludeGlobalServiceEvents"] is True
    selectors = trail["EventSelectors"]
    assert {"IncludeManagementEvents": True, "ReadWriteType": "All"} in selectors
    (data,) = [s for s in selectors if s.get("DataResources")]
    assert data["ReadWriteType"] == "All" and data["IncludeManagementEvents"] is False
    (resource,) = data["DataResources"]
    assert resource["Type"] == "AWS::S3::Object"
    assert "Artifacts" in json.dumps(resource["Values"])  # the artifact bucket's objects
    assert "AuditTrailKey" in json.dumps(trail["KMSKeyId"])


def test_the_trail_bucket_is_encrypted_retained_versioned_and_access_logged(each_env):
    t = each_env.template("data")
    buckets = t.find_resources("AWS::S3::Bucket")
    (logical, bucket) = next((k, b) for k, b in buckets.items() if k.startswith("AuditTrailBucket"))
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "AuditTrailKey" in json.dumps(rule["ServerSideEncryptionByDefault"])
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "audit-trail/"
    (expiry,) = [r for r in props["LifecycleConfiguration"]["Rules"] if r.get("Id") == "retention"]
    assert expiry["ExpirationInDays"] == each_env.settings.monitoring.trail_retention_days
    assert all(props["PublicAccessBlockConfiguration"].values())
    # CloudTrail may write there (the construct's bucket policy) and only over TLS.
    policies = t.find_resources("AWS::S3::BucketPolicy")
    (policy,) = [p for p in policies.values() if logical in json.dumps(p["Properties"]["Bucket"])]
    statements = json.dumps(policy["Properties"]["PolicyDocument"])
    assert "cloudtrail.amazonaws.com" in statements and "aws:SecureTransport" in statements


def test_cloudtrail_false_leaves_the_trail_its_bucket_and_key_out(tmp_path):
    """For an account whose organization trail already records its management events."""
    base = load_environments()["staging"].model_dump()
    base["monitoring"]["cloudtrail"] = False
    synth = synthesize(Environment.model_validate(base), tmp_path / "out")
    template = synth.template("data")
    assert template.find_resources("AWS::CloudTrail::Trail") == {}
    assert [k for k in template.find_resources("AWS::KMS::Key") if "AuditTrail" in k] == []
    assert [k for k in template.find_resources("AWS::S3::Bucket") if "AuditTrail" in k] == []


def test_only_this_trail_may_encrypt_with_the_trail_key(each_env):
    (key,) = [
        k
        for name, k in each_env.template("data").find_resources("AWS::KMS::Key").items()
        if name.startswith("AuditTrail")
    ]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudtrail,) = [s for s in statements if s.get("Sid") == "CloudTrailEncrypts"]
    assert cloudtrail["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert f"trail/{each_env.settings.name_prefix}-audit" in json.dumps(
        cloudtrail["Condition"]["StringEquals"]["aws:SourceArn"]
    )


def _database_group(synth) -> str:
    (reference,) = _db(synth)["Properties"]["VPCSecurityGroups"]
    return group_of(reference)


def test_database_security_group_has_no_outbound_rule(each_variant):
    # The database answers connections and opens none.
    assert egress(each_variant, "data", _database_group(each_variant)) == [NO_TRAFFIC]


def test_rotation_reaches_only_the_database_and_secrets_manager(each_variant):
    # Each rotation function (Secrets Manager's MySQL rotation from the Serverless Application
    # Repository) calls Secrets Manager over HTTPS and logs in to the database, nothing else.
    resources = each_variant.template_json("data")["Resources"]
    apps = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Application"]
    assert apps
    database = _database_group(each_variant)
    admitted = [
        destination(r["Properties"]["SourceSecurityGroupId"])
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
        and r["Properties"]["GroupId"] == {"Fn::GetAtt": [database, "GroupId"]}
    ]
    for app in apps:
        rotation = group_of(app["Properties"]["Parameters"]["vpcSecurityGroupIds"])
        assert f"ref:{rotation}" in admitted  # the database lets the rotation log in
        rules = egress(each_variant, "data", rotation)
        to_database = [r for r in rules if r[3] == f"ref:{database}"]
        # The rotation construct opens the database's own port, which CDK writes as a token.
        assert [r[:3] for r in to_database] in (
            [("tcp", DB_PORT, DB_PORT)],
            [("tcp", "token", "token")],
        ), rules
        https = [r for r in rules if r not in to_database]
        if each_variant.settings.network.has_interface_endpoints:
            assert [r[:3] for r in https] == [("tcp", 443, 443)], rules
            assert https[0][3].startswith("import:") and "EndpointSecurityGroup" in https[0][3]
        else:  # Secrets Manager through the NAT gateways
            assert https == [("tcp", 443, 443, "0.0.0.0/0")], rules
