"""Data stack: MLflow's database (RDS), the artifact bucket and its key, the audit trail.

The trail is CloudTrail's, built in components/audit_trail.py.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.audit_trail import AuditTrail
from infra.components.log_bucket import PRIVATE_BUCKET, LogBucket
from infra.nag import acknowledge
from mlplatform.config import Environment
from mlplatform.names import Output

__all__ = [
    "DB_PORT",
    "ENGINE_VERSIONS",
    "EXCLUDED_CHARACTERS",
    "MASTER_USER",
    "MLFLOW_USER",
    "DataStack",
    "engine_for",
]

DB_PORT = 3306
# The RDS master (migrations, rotation) and MLflow's own login (its schema only).
MASTER_USER = "mlflow"
MLFLOW_USER = "mlflow_app"
# Characters that break URLs, shells or configparser never enter a generated password.
EXCLUDED_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\^=,"

# The exact RDS minor per (engine, major) the kit deploys. Pinned so every environment runs the
# same server the tests ran against; bump it here, in one reviewed change.
ENGINE_VERSIONS: dict[tuple[str, str], str] = {
    ("mysql", "8.0"): "8.0.43",
    ("mysql", "8.4"): "8.4.7",
    ("mariadb", "10.11"): "10.11.13",
}


def engine_for(engine: str, version: str) -> rds.IInstanceEngine:
    """The RDS engine for a validated (engine, major version) pair, pinned to its minor."""
    full = ENGINE_VERSIONS[(engine, version)]
    if engine == "mysql":
        return rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.of(full, version))
    return rds.DatabaseInstanceEngine.maria_db(version=rds.MariaDbEngineVersion.of(full, version))


class DataStack(cdk.Stack):
    """The stateful half of the platform.

    Exposes ``database`` (rds.DatabaseInstance, master login in ``database.secret``),
    ``mlflow_login`` (MLflow's own database login, rotated by alternating users),
    ``bucket``, ``key`` (the customer-managed KMS key of the bucket) and
    ``rotation_security_group`` (the rotation function's: the database and Secrets Manager only;
    hand it to any further rotation so it does not get a group open to everything). The
    ``endpoint_security_group`` argument is the interface endpoints' group, None without them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Environment,
        vpc: ec2.IVpc,
        private_subnets: ec2.SubnetSelection,
        endpoint_security_group: ec2.ISecurityGroup | None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self._settings = settings
        self.rotation_security_group = self._rotation_security_group(vpc, endpoint_security_group)
        self.key = kms.Key(
            self,
            "ArtifactsKey",
            alias=f"alias/{settings.name_prefix}/artifacts",
            description=f"{settings.name_prefix}: MLflow artifacts and SageMaker data",
            enable_key_rotation=True,
            # Deleting the key makes every artifact unreadable: never tie it to the stack.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        access_logs = LogBucket(self, "ArtifactsAccessLogs")
        self.bucket = self._artifact_bucket(access_logs.bucket)
        self.trail = (
            AuditTrail(
                self,
                "AuditTrail",
                name_prefix=settings.name_prefix,
                watched=self.bucket,
                access_logs=access_logs.bucket,
                retention_days=settings.monitoring.trail_retention_days,
            )
            if settings.monitoring.cloudtrail
            else None
        )
        self.database = self._database(vpc, private_subnets)

        cdk.CfnOutput(self, Output.BUCKET_NAME, value=self.bucket.bucket_name)
        cdk.CfnOutput(self, Output.DATABASE_SECRET_ARN, value=self.mlflow_login.secret_arn)
        master = self.database.secret
        assert master is not None  # generated credentials always make a secret
        cdk.CfnOutput(self, Output.DATABASE_MASTER_SECRET_ARN, value=master.secret_arn)
        cdk.CfnOutput(
            self, Output.DATABASE_ENDPOINT, value=self.database.db_instance_endpoint_address
        )

    def _artifact_bucket(self, access_logs: s3.IBucket) -> s3.Bucket:
        art = self._settings.artifacts
        return s3.Bucket(
            self,
            "Artifacts",
            bucket_name=self._settings.bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            # One data key per bucket instead of one KMS call per object.
            bucket_key_enabled=True,
            **PRIVATE_BUCKET,  # type: ignore[arg-type]
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="noncurrent-versions",
                    noncurrent_version_expiration=cdk.Duration.days(
                        art.noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _database(self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection) -> rds.DatabaseInstance:
        db = self._settings.database
        engine = engine_for(db.engine, db.version)
        instance_id = f"{self._settings.name_prefix}-mlflow"
        parameters = self._parameter_group(engine, instance_id)
        log_groups = self._log_groups(instance_id)
        instance = self._instance(engine, instance_id, parameters, vpc, subnets)
        for group in log_groups:
            instance.node.add_dependency(group)
        _no_egress(instance.connections.security_groups[0])
        # The rotation constructs open the database's port from this group (both directions).
        # The master login is read fresh by its only users (migrate task, rotation): one user.
        instance.add_rotation_single_user(
            automatically_after=cdk.Duration.days(db.rotation_days),
            vpc_subnets=subnets,
            security_group=self.rotation_security_group,
            exclude_characters=EXCLUDED_CHARACTERS,
        )
        self.mlflow_login = self._mlflow_login(instance, subnets)
        self._acknowledge_database(instance)
        return instance

    def _parameter_group(self, engine: rds.IInstanceEngine, instance_id: str) -> rds.ParameterGroup:
        return rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            # Description is a replacement property: changing it would swap the group under
            # the running instance, so it stays as first deployed.
            description=f"{instance_id}: MLflow migrations create triggers",
            parameters={
                # MLflow's alembic migrations create triggers; with binary logging on (backups),
                # MySQL refuses that to a non-SUPER user unless this is set.
                "log_bin_trust_function_creators": "1",
                # Every connection uses TLS (MLflow's, the migrate task's, the rotation
                # function's); the local server is started the same way (local/services.py).
                "require_secure_transport": "1",
            },
        )

    def _log_groups(self, instance_id: str) -> list[logs.LogGroup]:
        # Log groups made here (not by RDS on first write) so they get a retention without the
        # LogRetention custom-resource Lambda.
        return [
            logs.LogGroup(
                self,
                f"RdsLog{kind.capitalize()}",
                log_group_name=f"/aws/rds/instance/{instance_id}/{kind}",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            for kind in ("error", "slowquery")
        ]

    def _instance(
        self,
        engine: rds.IInstanceEngine,
        instance_id: str,
        parameters: rds.IParameterGroup,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
    ) -> rds.DatabaseInstance:
        env = self._settings
        db = env.database
        return rds.DatabaseInstance(
            self,
            "Database",
            engine=engine,
            instance_identifier=instance_id,
            instance_type=ec2.InstanceType(db.instance_class.removeprefix("db.")),
            vpc=vpc,
            vpc_subnets=subnets,
            port=DB_PORT,
            database_name=db.name,
            credentials=rds.Credentials.from_generated_secret(
                MASTER_USER,
                secret_name=env.database_master_secret_name,
                exclude_characters=EXCLUDED_CHARACTERS,
            ),
            parameter_group=parameters,
            allocated_storage=db.allocated_storage_gib,
            max_allocated_storage=db.max_allocated_storage_gib,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            multi_az=db.multi_az,
            deletion_protection=db.deletion_protection,
            backup_retention=cdk.Duration.days(db.backup_retention_days),
            copy_tags_to_snapshot=True,
            publicly_accessible=False,
            # The minor is pinned (ENGINE_VERSIONS); an automatic upgrade would drift from the
            # tested one.
            auto_minor_version_upgrade=False,
            cloudwatch_logs_exports=["error", "slowquery"],
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )

    def _mlflow_login(
        self, instance: rds.DatabaseInstance, subnets: ec2.SubnetSelection
    ) -> secretsmanager.ISecret:
        """MLflow's own login, rights on its schema only (the migrate task creates the user).

        Rotated by alternating two users (the SAR multi-user function clones the user with the
        master login): the password a running task was given stays valid until the rotation
        after next, so a rotation never cuts tasks off; the health check replaces any task that
        lives that long. Not retained: after a restore the migrate task sets the user's password
        to whatever the secret holds.
        """
        env, db = self._settings, self._settings.database
        secret = rds.DatabaseSecret(
            self,
            "MlflowDatabaseSecret",
            username=MLFLOW_USER,
            secret_name=env.database_secret_name,
            master_secret=instance.secret,
            exclude_characters=EXCLUDED_CHARACTERS,
        )
        attached = secret.attach(instance)
        instance.add_rotation_multi_user(
            "MlflowLoginRotation",
            secret=attached,
            automatically_after=cdk.Duration.days(db.rotation_days),
            vpc_subnets=subnets,
            security_group=self.rotation_security_group,
            exclude_characters=EXCLUDED_CHARACTERS,
        )
        return attached

    def _rotation_security_group(
        self, vpc: ec2.IVpc, endpoints: ec2.ISecurityGroup | None
    ) -> ec2.SecurityGroup:
        # The rotation function calls Secrets Manager (through its interface endpoint where there
        # is one, else through NAT) and logs in to the database; it needs nothing else. Its code
        # and logs travel through the Lambda service, not this group.
        group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=vpc,
            description="Database secret rotation: the database and Secrets Manager only",
            allow_all_outbound=False,
        )
        if endpoints is not None:
            group.add_egress_rule(endpoints, ec2.Port.tcp(443), "Secrets Manager endpoint")
        else:
            group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Secrets Manager via NAT")
        return group

    def _acknowledge_database(self, instance: rds.DatabaseInstance) -> None:
        db = self._settings.database
        name = self._settings.name
        acknowledge(
            instance,
            "AwsSolutions-RDS11",
            f"{instance.node.id} of {name} listens on the engine's default port: the port is no "
            "secret, and only the MLflow task and rotation security groups may connect.",
        )
        acknowledge(
            instance,
            "AwsSolutions-RDS6",
            f"{instance.node.id} of {name}: MLflow's SQLAlchemy/pymysql pool cannot refresh "
            "15-minute IAM tokens; it logs in as its own user with a Secrets Manager password "
            "rotated by alternating users, so running tasks keep a valid one.",
        )
        if not db.multi_az:
            acknowledge(
                instance,
                "AwsSolutions-RDS3",
                f"[{name}.database] multi_az = false in environments.toml: this non-production "
                "MLflow database tolerates a zone outage; prod sets multi_az = true.",
            )
        if not db.deletion_protection:
            acknowledge(
                instance,
                "AwsSolutions-RDS10",
                f"[{name}.database] deletion_protection = false so `invoke destroy --env {name}` "
                "can remove it; the removal still takes a final snapshot.",
            )


# The rule CDK writes for a group made with allow_all_outbound=False and no egress rule: it
# matches nothing, and its presence stops EC2 adding the default allow-all rule.
_MATCH_NO_TRAFFIC = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}


def _no_egress(group: ec2.ISecurityGroup) -> None:
    """Leave ``group`` with no outbound rule: the database answers connections and opens none.

    RDS makes the instance's group with all outbound allowed and offers no switch. A group of our
    own (allow_all_outbound=False) would get a new logical id, so the export the MLflow stack
    imports for its database rule would be renamed, and CloudFormation refuses to drop an export
    in use: the data stack's next update would fail. Overriding the rendered rules keeps the group.
    """
    cfn = group.node.default_child
    assert isinstance(cfn, ec2.CfnSecurityGroup)
    cfn.add_property_override("SecurityGroupEgress", [_MATCH_NO_TRAFFIC])
