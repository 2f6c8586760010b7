"""SageMaker stack: the roles of training jobs and of endpoints, and their network.

Both roles are least privilege. The training role: two bucket prefixes, the training image's
repository, its log group, the MLflow client secret, the bucket key. The endpoint role: the model
archives' prefix, the serving image's repository, its log groups, the bucket key. The security
group lets jobs and endpoints reach the MLflow ALB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.team_training import TeamTraining
from infra.nag import acknowledge, iam5_resource, rendered_object_arn
from infra.naming import object_arn
from mlplatform.config import Environment
from mlplatform.names import (
    MODELS_PREFIX,
    Output,
    ecr_repository_arn,
    repository_name,
    team_role_output,
)

__all__ = ["SageMakerStack"]


class SageMakerStack(cdk.Stack):
    """Exposes ``role``, ``endpoint_role``, ``security_group`` and ``team_roles``.

    ``role`` runs training jobs, ``team_roles`` each team's (components/team_training.py),
    ``endpoint_role`` endpoints; ``security_group`` is both's.

    Jobs and endpoints are named ``<name_prefix>-...``; their log permissions are scoped to
    those names, so a job with another name cannot write logs with this role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Environment,
        vpc: ec2.IVpc,
        bucket: s3.IBucket,
        key: kms.IKey,
        repositories: Mapping[str, ecr.IRepository],
        client_secret: secretsmanager.ISecret,
        alb_security_group: ec2.ISecurityGroup,
        alb_ports: Sequence[int],
        teams: Mapping[str, Sequence[str]] | None = None,
        **kwargs: object,
    ) -> None:
        """`teams`: each team of teams.toml -> its models configured here (a role of its own)."""
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.security_group = self._jobs_security_group(vpc, alb_security_group, alb_ports)
        everything = {
            "data": [f"{settings.training.dataset_prefix}/*"],
            "output": [f"{settings.training.output_prefix}/*"],
            "checkpoints": [f"{settings.training.checkpoint_prefix}/*"],
        }
        training = self._training_statements(
            settings,
            bucket,
            key,
            repositories["training"],
            everything,
            ["/aws/sagemaker/TrainingJobs:*"],
            client_secret.secret_arn,
        )
        self.role = self._execution_role(settings, training)
        self.team_roles: dict[str, iam.Role] = {}
        for team, models in (teams or {}).items():
            identity = TeamTraining(
                self,
                f"Team{team_role_output(team).removeprefix('TeamRoleArn')}",
                settings=settings,
                team=team,
                models=models,
                statements=lambda prefixes, streams, secret: self._training_statements(
                    settings, bucket, key, repositories["training"], prefixes, streams, secret
                ),
            )
            self.team_roles[team] = identity.role
            cdk.CfnOutput(self, team_role_output(team), value=identity.role.role_arn)
        self.endpoint_role = self._endpoint_role(settings, key, repositories["serving"])
        cdk.CfnOutput(self, Output.EXECUTION_ROLE_ARN, value=self.role.role_arn)
        cdk.CfnOutput(self, Output.ENDPOINT_ROLE_ARN, value=self.endpoint_role.role_arn)
        cdk.CfnOutput(self, Output.SECURITY_GROUP_ID, value=self.security_group.security_group_id)

    def _jobs_security_group(
        self, vpc: ec2.IVpc, alb_security_group: ec2.ISecurityGroup, alb_ports: Sequence[int]
    ) -> ec2.SecurityGroup:
        sg = ec2.SecurityGroup(
            self,
            "JobsSecurityGroup",
            vpc=vpc,
            description="SageMaker jobs and endpoints: HTTPS out (AWS APIs, MLflow ALB), peers in",
            allow_all_outbound=False,
        )
        # HTTPS reaches the VPC endpoints, S3 (gateway endpoint prefix list) and the ALB.
        sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and MLflow")
        # Distributed training: instances of one job talk to each other on any port.
        sg.add_ingress_rule(sg, ec2.Port.all_traffic(), "between instances of one job")
        sg.add_egress_rule(sg, ec2.Port.all_traffic(), "between instances of one job")
        for port in alb_ports:
            # An explicit rule in this stack: add_ingress_rule on the ALB's group could land in
            # the MLflow stack and make it depend on this one (a cycle).
            ec2.CfnSecurityGroupIngress(
                self,
                f"AlbFromJobs{port}",
                group_id=alb_security_group.security_group_id,
                source_security_group_id=sg.security_group_id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"SageMaker jobs and endpoints to MLflow on {port}",
            )
            if port != 443:
                sg.add_egress_rule(alb_security_group, ec2.Port.tcp(port), f"to MLflow on {port}")
        return sg

    def _execution_role(
        self, settings: Environment, statements: list[iam.PolicyStatement]
    ) -> iam.Role:
        """The training jobs' role, with its policy of `statements`."""
        prefix = settings.name_prefix
        role = iam.Role(
            self,
            "ExecutionRole",
            role_name=f"{prefix}-sagemaker-execution",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{prefix}: SageMaker training jobs",
            max_session_duration=cdk.Duration.hours(12),
        )
        policy = iam.Policy(self, "ExecutionPolicy", statements=statements, roles=[role])
        self._acknowledge(policy, settings, "/aws/sagemaker/TrainingJobs:*", "training")
        return role

    def _training_statements(
        self,
        settings: Environment,
        bucket: s3.IBucket,
        key: kms.IKey,
        repository: ecr.IRepository,
        prefixes: dict[str, list[str]],
        log_groups: list[str],
        secret_arn: str,
    ) -> list[iam.PolicyStatement]:
        """A training role's policy: `prefixes` (key patterns of data, output, checkpoints)."""
        data, output, checkpoints = prefixes["data"], prefixes["output"], prefixes["checkpoints"]
        patterns = [*data, *output, *checkpoints]
        # ListBucket takes the folders themselves too (SageMaker lists a channel's prefix).
        listed = patterns + [p.removesuffix("*").removesuffix("/") for p in patterns]
        return [
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": listed}},
            ),
            iam.PolicyStatement(
                sid="ReadData",
                actions=["s3:GetObject"],
                resources=[object_arn(self, settings, p) for p in data],
            ),
            iam.PolicyStatement(
                sid="WriteOutput",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[object_arn(self, settings, p) for p in output],
            ),
            iam.PolicyStatement(
                sid="SyncCheckpoints",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[object_arn(self, settings, p) for p in checkpoints],
            ),
            self._pull("PullOwnImages", [repository.repository_arn]),
            self._logs(*log_groups),
            iam.PolicyStatement(
                sid="MlflowClientSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[secret_arn],
            ),
            *self._common(key),
        ]

    def _endpoint_role(
        self, settings: Environment, key: kms.IKey, repository: ecr.IRepository
    ) -> iam.Role:
        """The endpoints' role, with its policy."""
        prefix = settings.name_prefix
        # Endpoints run with a role of their own: SageMaker reads the model archive and pulls the
        # serving image with it, and the container needs nothing else (no data, no secrets).
        role = iam.Role(
            self,
            "EndpointRole",
            role_name=f"{prefix}-sagemaker-endpoint",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{prefix}: SageMaker endpoints (model archives, serving image)",
        )
        policy = iam.Policy(
            self,
            "EndpointPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadModels",
                    actions=["s3:GetObject"],
                    resources=[object_arn(self, settings, f"{MODELS_PREFIX}/*")],
                ),
                self._pull("PullServingImage", self._serving_images(settings, repository)),
                self._logs("/aws/sagemaker/Endpoints/*"),
                *self._common(key),
            ],
        )
        self._acknowledge(policy, settings, "/aws/sagemaker/Endpoints/*", "endpoint")
        return role

    @staticmethod
    def _serving_images(settings: Environment, repository: ecr.IRepository) -> list[str]:
        """The kit's serving repository, plus the configured serving image's if it is another."""
        serving = [repository.repository_arn]
        configured = settings.sagemaker.serving_image
        other = ecr_repository_arn(configured) if configured else None
        own = f":repository/{repository_name(settings, 'serving')}"
        serving += [other] if other and not other.endswith(own) else []
        return serving

    @staticmethod
    def _pull(sid: str, repositories: list[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=[
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            resources=repositories,
        )

    def _logs(self, *groups: str) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="OwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"],
            resources=[
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=group,
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
                for group in groups
            ],
        )

    @staticmethod
    def _common(key: kms.IKey) -> list[iam.PolicyStatement]:
        """What jobs and endpoints both need: the bucket key, ECR login, metrics, their ENIs."""
        return [
            iam.PolicyStatement(
                sid="BucketKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
            # GetAuthorizationToken has no resource-level permissions: "*" is the only form.
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
            # SageMaker publishes job and endpoint metrics with the role; no resource ARN exists.
            iam.PolicyStatement(
                sid="SageMakerMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
            ),
            # Jobs and endpoints with a VpcConfig create their ENIs through their role; these
            # EC2 actions do not support resource-level scoping at creation time.
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            ),
        ]

    def _acknowledge(self, policy: iam.Policy, settings: Environment, group: str, who: str) -> None:
        training = settings.training
        logs_arn = f"arn:<AWS::Partition>:logs:{settings.region}:{settings.account}:log-group:"
        reasons = {
            "AwsSolutions-IAM5[Resource::*]": (
                f"SageMaker {who} role: ecr:GetAuthorizationToken, the VPC ENI actions and "
                "cloudwatch:PutMetricData (only /aws/sagemaker/* namespaces) take no resource ARN."
            ),
            iam5_resource(f"{logs_arn}{group}"): (
                f"SageMaker {who} role: streams of the log group(s) SageMaker writes {who} logs "
                "to, named after jobs or endpoints that do not exist yet."
            ),
        }
        if who == "training":
            reasons[
                iam5_resource(rendered_object_arn(settings, f"{training.dataset_prefix}/*"))
            ] = (
                f"SageMaker training role: read-only on the training channels under "
                f"{training.dataset_prefix}/ (training.dataset_prefix in environments.toml)."
            )
            reasons[iam5_resource(rendered_object_arn(settings, f"{training.output_prefix}/*"))] = (
                f"SageMaker training role: model archives under {training.output_prefix}/ "
                "(training.output_prefix); SageMaker names each after its job."
            )
            checkpoints = rendered_object_arn(settings, f"{training.checkpoint_prefix}/*")
            reasons[iam5_resource(checkpoints)] = (
                f"SageMaker training role: each job's checkpoints under "
                f"{training.checkpoint_prefix}/<model>/<job>/ (training.checkpoint_prefix), "
                "synced both ways by SageMaker; named after jobs that do not exist yet."
            )
        else:
            reasons[iam5_resource(rendered_object_arn(settings, f"{MODELS_PREFIX}/*"))] = (
                f"SageMaker endpoint role: read-only on the model archives under {MODELS_PREFIX}/,"
                " one per registry version and content hash."
            )
        for rule_id, reason in reasons.items():
            acknowledge(policy, rule_id, reason)
