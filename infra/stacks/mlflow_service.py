"""MLflow service stack: ECR, ECS cluster, Fargate service behind an ALB, migrate task.

Also the MLflow secrets (admin, Flask key, SageMaker client), target-tracking autoscaling, and
the private DNS name (``mlflow.domain_name``) that clients and the certificate use.
"""

from __future__ import annotations

import functools
import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.load_balancer import MlflowLoadBalancer
from infra.components.mlflow_task import MlflowSecrets, MlflowTask
from infra.components.private_domain import PrivateDomain
from infra.nag import acknowledge, iam5_resource, rendered_object_arn
from infra.naming import object_arn
from infra.retention import retention_days
from infra.stacks.data import DB_PORT
from mlplatform.config import Environment
from mlplatform.names import (
    ARTIFACTS_PREFIX,
    CONTAINER_AUTH_CONFIG_DIR,
    CONTAINER_RDS_CA_BUNDLE,
    IMAGES,
    MLFLOW_PORT,
    RELEASED_IMAGE_OUTPUTS,
    Output,
    format_released,
    repository_name,
    repository_output,
)
from mlplatform.release.cdk_context import NO_SERVICE_IMAGE
from mlplatform.release.ecr_push import RELEASE_TAG_PREFIX

__all__ = ["RELEASES_KEPT", "MlflowServiceStack"]

# Releases an ECR repository keeps: a rollback or scale-out can pull any of them.
RELEASES_KEPT = 50


class MlflowServiceStack(cdk.Stack):
    """Runs the MLflow image by digest on Fargate.

    Exposes ``repositories`` ({"mlflow", "training", "serving"}), ``cluster``, ``service``,
    ``balancer`` (MlflowLoadBalancer), ``migrate_task`` and ``client_secret`` for the SageMaker and
    monitoring stacks. ``settings.mlflow.image_digest`` must be set (as
    mlplatform.release.cdk_context makes sure).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Environment,
        vpc: ec2.IVpc,
        private_subnets: ec2.SubnetSelection,
        database: rds.DatabaseInstance,
        database_login: secretsmanager.ISecret,
        bucket: s3.IBucket,
        key: kms.IKey,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        mlflow = settings.mlflow
        # mlplatform.release.cdk_context guarantees a digest; this guards direct use.
        if mlflow.image_digest is None:
            raise ValueError("settings.mlflow.image_digest is required to build the MLflow service")

        self.repositories = {name: self._repository(settings, name) for name in IMAGES}
        secrets = self._secrets(settings, database, database_login)
        self.client_secret = self._client_secret(settings)
        self.cluster = self._cluster(settings, vpc)
        log_group = self._log_group(settings)
        self.balancer = self._load_balancer(settings, vpc, private_subnets)
        # `invoke deploy` rolls a release in two CDK deploys: first the migrate task gets the new
        # image while the service keeps the one it runs (or, on a first deploy, no task at all);
        # the service follows once the migration has succeeded.
        paused = mlflow.service_image_digest == NO_SERVICE_IMAGE
        service_digest = self._serve_digest(mlflow.image_digest, mlflow.service_image_digest)
        self.service_image_digest = NO_SERVICE_IMAGE if paused else service_digest
        serve, self.migrate_task = self._tasks(
            settings,
            self._environment(settings, database, bucket),
            secrets,
            log_group,
            serve_digest=service_digest,
            migrate_digest=mlflow.image_digest,
        )
        self._grant_artifacts(settings, serve.task_definition.task_role, bucket, key)
        self.service = self._service(
            settings, serve, private_subnets, self._task_security_group(vpc, database), paused
        )
        self._database_access(database)
        self._autoscaling(settings, paused)
        self._outputs(settings)

    def _repository(self, settings: Environment, image: str) -> ecr.Repository:
        return ecr.Repository(
            self,
            f"{image.capitalize()}Repository",
            repository_name=repository_name(settings, image),
            image_scan_on_push=True,
            # Immutable tags: a tag can never be re-pointed at other bytes after it was tested.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            # Every push carries an immutable release tag (mlplatform.release.ecr_push), and only
            # the oldest releases beyond a generous count expire: an age rule on untagged images
            # would delete what a service or endpoint still runs (each pulls by digest).
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the newest {RELEASES_KEPT} releases",
                    tag_status=ecr.TagStatus.TAGGED,
                    tag_prefix_list=[RELEASE_TAG_PREFIX],
                    max_image_count=RELEASES_KEPT,
                )
            ],
            # Images referenced by a running service or an endpoint must outlive a stack delete.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _secrets(
        self,
        settings: Environment,
        database: rds.DatabaseInstance,
        database_login: secretsmanager.ISecret,
    ) -> MlflowSecrets:
        """What the tasks inject: the database logins and the generated admin and Flask secrets."""
        prefix = settings.name_prefix
        admin = self._generated_secret(
            "AdminSecret",
            settings.admin_secret_name,
            f"{prefix}: MLflow admin user",
            settings.mlflow.admin_username,
            "MLflow reads admin_password only when it creates the admin user (first start on an "
            "empty database) and ignores it afterwards, so a rotated value would stop matching "
            "the real password; `invoke rotate-admin` rotates it through MLflow's "
            "users/update-password API first and then the secret (staging labels).",
        )
        flask_key = self._generated_secret(
            "FlaskSecret",
            settings.flask_secret_name,
            f"{prefix}: MLflow session key",
            None,
            "the Flask key that signs UI sessions is read once at task start: a new value only "
            "takes effect (and signs everyone out) after the service is redeployed, which a "
            "rotation function does not trigger.",
        )
        assert database.secret is not None  # from_generated_secret always creates one
        return MlflowSecrets(
            database=database_login, master=database.secret, admin=admin, flask_key=flask_key
        )

    def _client_secret(self, settings: Environment) -> secretsmanager.Secret:
        """The password of the MLflow user that SageMaker jobs log in as."""
        return self._generated_secret(
            "ClientSecret",
            settings.client_secret_name,
            f"{settings.name_prefix}: MLflow user of SageMaker jobs",
            settings.mlflow.client_username,
            "the SageMaker client user's password lives in MLflow's user table; a new value "
            "holds only after `invoke deploy` sets it through MLflow's users/update-password API "
            "(mlplatform.registry.users), so a scheduled rotation would lock jobs out until then.",
        )

    def _generated_secret(
        self,
        construct_id: str,
        name: str,
        description: str,
        username: str | None,
        not_rotated: str,
    ) -> secretsmanager.Secret:
        """A generated secret: JSON {username, password} with ``username``, else a bare string.

        ``not_rotated`` says why the secret has no rotation (acknowledging AwsSolutions-SMG4).
        """
        template = (
            secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": username}),
                generate_string_key="password",
                exclude_punctuation=True,
                password_length=40,
            )
            if username
            else secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=64)
        )
        secret = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=description,
            generate_secret_string=template,
            # The users these passwords belong to live in the database, which outlives the
            # stack (snapshot, deletion protection): deleting the secrets would lock the kit
            # out of its own MLflow. A re-created stack must import them (`cdk import`).
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(secret, "AwsSolutions-SMG4", f"{name}: {not_rotated}")
        return secret

    def _cluster(self, settings: Environment, vpc: ec2.IVpc) -> ecs.Cluster:
        return ecs.Cluster(
            self,
            "Cluster",
            cluster_name=f"{settings.name_prefix}-mlflow",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            # FARGATE and FARGATE_SPOT; a service picks one by its capacity provider strategy.
            enable_fargate_capacity_providers=settings.mlflow.fargate_spot,
        )

    def _log_group(self, settings: Environment) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=f"/{settings.name_prefix}/mlflow",
            retention=retention_days(
                settings.mlflow.log_retention_days, f"{settings.name}.mlflow.log_retention_days"
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

    def _load_balancer(
        self, settings: Environment, vpc: ec2.IVpc, private_subnets: ec2.SubnetSelection
    ) -> MlflowLoadBalancer:
        mlflow = settings.mlflow
        balancer = MlflowLoadBalancer(
            self,
            "LoadBalancer",
            settings=mlflow,
            vpc=vpc,
            vpc_cidr=settings.network.cidr,
            private_subnets=private_subnets,
        )
        if mlflow.domain_name:
            # The name the certificate covers, resolvable in the VPC (required with HTTPS).
            PrivateDomain(self, "Domain", domain_name=mlflow.domain_name, vpc=vpc, alb=balancer.alb)
        return balancer

    @staticmethod
    def _serve_digest(image_digest: str, service_image_digest: str | None) -> str:
        """The image the Serve task runs: the service's own, else (first deploy, paused) the new."""
        if service_image_digest is None or service_image_digest == NO_SERVICE_IMAGE:
            return image_digest
        return service_image_digest

    def _tasks(
        self,
        settings: Environment,
        environment: dict[str, str],
        secrets: MlflowSecrets,
        log_group: logs.ILogGroup,
        *,
        serve_digest: str,
        migrate_digest: str,
    ) -> tuple[MlflowTask, MlflowTask]:
        """The service's Serve task and the one-off Migrate task, each on its own image digest."""
        mlflow, prefix = settings.mlflow, settings.name_prefix
        task = functools.partial(
            MlflowTask,
            self,
            repository=self.repositories["mlflow"],
            cpu=mlflow.cpu,
            memory_mib=mlflow.memory_mib,
            environment=environment,
            secrets=secrets,
            log_group=log_group,
        )
        serve = task("Serve", family=f"{prefix}-mlflow", command="serve", image_digest=serve_digest)
        # A separate one-off task: migrations run once, before the service starts new code,
        # because two servers migrating one database race (see DESIGN.md).
        migrate = task(
            "Migrate",
            family=f"{prefix}-mlflow-migrate",
            command="migrate",
            image_digest=migrate_digest,
        )
        return serve, migrate

    def _environment(
        self, settings: Environment, database: rds.DatabaseInstance, bucket: s3.IBucket
    ) -> dict[str, str]:
        """The container's plain environment: settings only, every credential is a secret."""
        mlflow = settings.mlflow
        # MLflow answers 403 to any Host it was not told about: the ALB's own name, the
        # configured domain (derived into server_hosts), and the names from environments.toml.
        hosts = [self.balancer.alb.load_balancer_dns_name, *mlflow.server_hosts]
        return {
            "MLFLOW_DB_ENGINE": settings.database.engine,
            "MLFLOW_DB_HOST": database.db_instance_endpoint_address,
            "MLFLOW_DB_PORT": database.db_instance_endpoint_port,
            "MLFLOW_DB_NAME": settings.database.name,
            # TLS to RDS, the chain and the instance's name verified against Amazon's RDS CAs in
            # the image; the parameter group refuses anything else (stacks/data.py).
            "MLFLOW_DB_SSL_CA": CONTAINER_RDS_CA_BUNDLE,
            "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{bucket.bucket_name}/{ARTIFACTS_PREFIX}",
            "MLFLOW_ALLOWED_HOSTS": ",".join(hosts),
            "MLFLOW_WORKERS": str(mlflow.workers),
            "MLFLOW_AUTH_CACHE_TTL_SECONDS": str(mlflow.auth_cache_ttl_seconds),
            "MLFLOW_HOST": "0.0.0.0",  # inside the task's own network namespace only
            # Where `serve` writes its 0600 auth ini, which the health check reads its login from.
            "MLFLOW_AUTH_CONFIG_DIR": CONTAINER_AUTH_CONFIG_DIR,
            "MLFLOW_PORT": str(MLFLOW_PORT),
            "AWS_DEFAULT_REGION": settings.region,
        }

    def _grant_artifacts(
        self, settings: Environment, role: iam.IRole, bucket: s3.IBucket, key: kms.IKey
    ) -> None:
        # Only the server touches artifacts (clients go through its proxy), and only under its
        # prefix; explicit actions instead of grant_read_write's s3:GetObject* / s3:Abort* family.
        objects = object_arn(self, settings, f"{ARTIFACTS_PREFIX}/*")
        policy = iam.Policy(
            self,
            "ArtifactsPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ListArtifacts",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={
                        "StringLike": {"s3:prefix": [ARTIFACTS_PREFIX, f"{ARTIFACTS_PREFIX}/*"]}
                    },
                ),
                iam.PolicyStatement(
                    sid="ReadWriteArtifacts",
                    actions=[
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                    ],
                    resources=[objects],
                ),
                iam.PolicyStatement(
                    sid="ArtifactsKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                ),
            ],
        )
        acknowledge(
            policy,
            iam5_resource(rendered_object_arn(settings, f"{ARTIFACTS_PREFIX}/*")),
            f"MLflow task role: objects under {ARTIFACTS_PREFIX}/ in {settings.bucket_name} only, "
            "the store MLflow proxies for its clients; object keys hold run ids, unknown in "
            "advance.",
        )

    def _task_security_group(
        self, vpc: ec2.IVpc, database: rds.DatabaseInstance
    ) -> ec2.SecurityGroup:
        # Serve and migrate tasks (the migrate RunTask uses TaskSecurityGroupId) reach the
        # database and HTTPS, nothing else. HTTPS goes to 0.0.0.0/0 because S3 (artifacts and
        # ECR image layers) is reached through the gateway endpoint at S3's public addresses,
        # which only the region's S3 prefix list names, and its id needs a lookup at synth. The
        # route table sends S3 to the endpoint, whose policy admits only the kit's buckets; the
        # other AWS APIs resolve to the interface endpoints where they exist, else go via NAT.
        group = ec2.SecurityGroup(
            self,
            "ServiceSecurityGroup",
            vpc=vpc,
            description="MLflow serve and migrate tasks: the database and HTTPS to AWS APIs",
            allow_all_outbound=False,
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")
        group.add_egress_rule(
            database.connections.security_groups[0], ec2.Port.tcp(DB_PORT), "MLflow database"
        )
        return group

    def _service(
        self,
        settings: Environment,
        serve: MlflowTask,
        private_subnets: ec2.SubnetSelection,
        security_group: ec2.SecurityGroup,
        paused: bool,
    ) -> ecs.FargateService:
        mlflow = settings.mlflow
        service = ecs.FargateService(
            self,
            "Service",
            service_name=f"{settings.name_prefix}-mlflow",
            cluster=self.cluster,
            task_definition=serve.task_definition,
            desired_count=0 if paused else mlflow.min_tasks,
            vpc_subnets=private_subnets,
            security_groups=[security_group],
            assign_public_ip=False,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            health_check_grace_period=cdk.Duration.seconds(120),
            platform_version=ecs.FargatePlatformVersion.LATEST,
            capacity_provider_strategies=(
                [ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1)]
                if mlflow.fargate_spot
                else None
            ),
        )
        # Also opens exactly ALB -> task on the MLflow port (task ingress + ALB egress rules).
        self.balancer.target_group.add_target(service)
        return service

    def _database_access(self, database: rds.DatabaseInstance) -> None:
        # Written here as an explicit rule: `database.connections.allow_*` would place it in the
        # data stack, which would then depend on this one (a cycle).
        ec2.CfnSecurityGroupIngress(
            self,
            "DatabaseFromService",
            group_id=database.connections.security_groups[0].security_group_id,
            source_security_group_id=self.service.connections.security_groups[0].security_group_id,
            ip_protocol="tcp",
            from_port=DB_PORT,
            to_port=DB_PORT,
            description="MLflow service and migrate task to the database",
        )

    def _autoscaling(self, settings: Environment, paused: bool) -> None:
        mlflow = settings.mlflow
        # A scaling floor above zero would start tasks before the first migration.
        scaling = self.service.auto_scale_task_count(
            min_capacity=0 if paused else mlflow.min_tasks, max_capacity=mlflow.max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "CpuTarget",
            target_utilization_percent=mlflow.scale_cpu_percent,
            scale_in_cooldown=cdk.Duration.minutes(5),
            scale_out_cooldown=cdk.Duration.minutes(1),
        )

    def _outputs(self, settings: Environment) -> None:
        # What `invoke` needs to run the migrate task and to reach MLflow, by stable names.
        mlflow = settings.mlflow
        host = mlflow.domain_name or self.balancer.alb.load_balancer_dns_name
        cdk.CfnOutput(self, Output.MLFLOW_URL, value=f"{self.balancer.scheme}://{host}")
        cdk.CfnOutput(self, Output.ALB_DNS_NAME, value=self.balancer.alb.load_balancer_dns_name)
        cdk.CfnOutput(self, Output.CLUSTER_NAME, value=self.cluster.cluster_name)
        cdk.CfnOutput(self, Output.SERVICE_NAME, value=self.service.service_name)
        # What `invoke deploy` compares to decide which steps of a release are already done.
        cdk.CfnOutput(self, Output.IMAGE_DIGEST, value=str(mlflow.image_digest))
        cdk.CfnOutput(self, Output.SERVICE_IMAGE_DIGEST, value=self.service_image_digest)
        cdk.CfnOutput(
            self,
            Output.MIGRATE_TASK_DEFINITION_ARN,
            value=self.migrate_task.task_definition.task_definition_arn,
        )
        # The migrate task runs with the service's security group, which the database admits.
        cdk.CfnOutput(
            self,
            Output.TASK_SECURITY_GROUP_ID,
            value=self.service.connections.security_groups[0].security_group_id,
        )
        for name, repo in self.repositories.items():
            cdk.CfnOutput(self, repository_output(name), value=repo.repository_uri)
        # Which training and serving image of each source the release pushed (`fraud=sha256:…`):
        # `train --runner sagemaker` and the endpoint step read them here, so no deploying
        # machine keeps them.
        released = {
            "training": settings.training.training_image_digests,
            "serving": settings.sagemaker.serving_image_digests,
        }
        for name, digests in released.items():
            cdk.CfnOutput(self, RELEASED_IMAGE_OUTPUTS[name], value=format_released(digests))
