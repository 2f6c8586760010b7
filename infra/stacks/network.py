"""Network stack: the VPC, flow logs, the S3 gateway endpoint and its policy, interface endpoints.

Interface endpoints exist where ``network.has_interface_endpoints`` (``interface_endpoints`` in
environments.toml, by default exactly where there is no NAT gateway).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge
from infra.retention import retention_days
from mlplatform.config import Environment, NetworkSettings
from mlplatform.names import Output, availability_zones

__all__ = ["INTERFACE_ENDPOINTS", "S3_BUCKET_ACTIONS", "S3_OBJECT_ACTIONS", "NetworkStack"]

# What the private subnets must reach without a route to the internet (with NAT, the switch sends
# these calls here instead; each costs about USD 0.01 an hour per zone, see NetworkSettings): ECR
# api + dkr and S3 (image layers) for Fargate and SageMaker pulls, Logs for awslogs, Secrets
# Manager for the injected secrets and the rotation function, STS for SDK credential calls, KMS
# because the artifact bucket is encrypted with a customer key, SageMaker API/runtime for jobs
# and endpoints.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
}


# What the kit's roles do in the artifact bucket through the S3 gateway endpoint (the MLflow task
# role, the SageMaker training and endpoint roles; each role's own policy narrows it to prefixes).
# The endpoint policy is checked on every call through it: a role that gains an S3 action must
# gain it here too, which test_s3_endpoint_admits_every_s3_action_the_roles_are_granted enforces.
S3_BUCKET_ACTIONS = ["s3:ListBucket"]
S3_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


class NetworkStack(cdk.Stack):
    """The VPC every other stack lives in.

    With ``network.nat_gateways = 0`` the private subnets are isolated and interface endpoints
    carry all AWS traffic; with NAT gateways they are private-with-egress, and the interface
    endpoints exist where ``network.interface_endpoints = true``. The S3 gateway endpoint exists in
    both cases because it is free and keeps artifact traffic off the NAT; its policy admits only
    the kit's buckets. Exposes ``vpc``, ``private_subnets`` and ``endpoint_security_group`` (the
    interface endpoints' group, None without them) for the stacks whose groups reach them.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Environment, **kwargs: object
    ) -> None:
        # Set before super().__init__: CDK may ask for the zones while building the stack.
        self._zones = availability_zones(settings)
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        net = settings.network
        isolated = net.nat_gateways == 0
        private_type = (
            ec2.SubnetType.PRIVATE_ISOLATED if isolated else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=private_type)
        self.vpc = self._vpc(net, private_type)
        cdk.CfnOutput(
            self,
            Output.PRIVATE_SUBNET_IDS,
            value=",".join(self.vpc.select_subnets(subnet_type=private_type).subnet_ids),
        )
        self._flow_logs(net)
        self._s3_endpoint(settings)
        self.endpoint_security_group: ec2.ISecurityGroup | None = None
        if net.has_interface_endpoints:
            self.endpoint_security_group = self._interface_endpoints(net)

    def _vpc(self, net: NetworkSettings, private_type: ec2.SubnetType) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(net.cidr),
            availability_zones=self._zones,
            nat_gateways=net.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                ec2.SubnetConfiguration(name="private", subnet_type=private_type, cidr_mask=22),
            ],
            # Restricting the default SG needs a custom-resource Lambda; nothing here uses the
            # default group (every resource gets its own SG), so the Lambda is not worth its IAM.
            restrict_default_security_group=False,
        )
        for subnet in [*vpc.public_subnets, *vpc.select_subnets(subnet_type=private_type).subnets]:
            cfn_subnet = subnet.node.default_child
            assert isinstance(cfn_subnet, ec2.CfnSubnet)
            # Zones are named from settings on purpose (synth must not look them up), which is
            # exactly what cfn-lint W3010 warns about; the ignore is scoped to these subnets.
            cfn_subnet.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})
        acknowledge(
            vpc,
            "CloudFormation-Validate::W3010",
            f"{vpc.node.path} names its zones ({', '.join(self._zones)}) from "
            "environments.toml on purpose: synth must not look them up, which would need AWS "
            "credentials.",
        )
        return vpc

    def _flow_logs(self, net: NetworkSettings) -> None:
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            retention=retention_days(
                net.flow_log_retention_days, "network.flow_log_retention_days"
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    def _s3_endpoint(self, settings: Environment) -> ec2.GatewayVpcEndpoint:
        s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[self.private_subnets],
        )
        for statement in self._s3_endpoint_statements(settings):
            s3_endpoint.add_to_policy(statement)
        return s3_endpoint

    def _s3_endpoint_statements(self, settings: Environment) -> list[iam.PolicyStatement]:
        """What the S3 gateway endpoint admits: the kit's artifact bucket and ECR's layer bucket.

        Not the access-log buckets (S3 and ELB log delivery write them from outside the VPC) nor
        the CDK assets bucket (deploys run outside the VPC). Exfiltration to any other bucket
        through the endpoint is refused, whatever a principal's own policy allows.
        """
        bucket = f"arn:{self.partition}:s3:::{settings.bucket_name}"
        # Fargate and SageMaker download ECR image layers from this AWS-owned bucket through the
        # endpoint (documented by ECR for gateway endpoints).
        layers = f"arn:{self.partition}:s3:::prod-{settings.region}-starport-layer-bucket/*"
        # Whoever calls through the endpoint; each caller's own IAM policy must still allow it.
        anyone = [iam.AnyPrincipal()]
        return [
            iam.PolicyStatement(
                sid="ArtifactBucket",
                principals=anyone,
                actions=S3_BUCKET_ACTIONS,
                resources=[bucket],
            ),
            iam.PolicyStatement(
                sid="ArtifactObjects",
                principals=anyone,
                actions=S3_OBJECT_ACTIONS,
                resources=[f"{bucket}/*"],
            ),
            iam.PolicyStatement(
                sid="EcrImageLayers",
                principals=anyone,
                actions=["s3:GetObject"],
                resources=[layers],
            ),
        ]

    def _interface_endpoints(self, net: NetworkSettings) -> ec2.SecurityGroup:
        """The INTERFACE_ENDPOINTS in the private subnets; returns their security group."""
        # One security group for all interface endpoints: HTTPS from inside the VPC only.
        endpoint_sg = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface VPC endpoints: HTTPS from the VPC",
            allow_all_outbound=False,
        )
        endpoint_sg.add_ingress_rule(
            # The literal range from settings, not the VPC's token: it reads in the template
            # and lets cdk-nag evaluate the rule.
            ec2.Peer.ipv4(net.cidr),
            ec2.Port.tcp(443),
            "HTTPS from the VPC",
        )
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                f"{name}Endpoint",
                service=service,
                subnets=self.private_subnets,
                security_groups=[endpoint_sg],
                private_dns_enabled=True,
                open=False,
            )
        return endpoint_sg

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones, not CDK's default context lookup.

        The lookup would need AWS credentials at synth; the Vpc checks its zones against this.
        """
        return list(self._zones)
