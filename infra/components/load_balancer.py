"""The ALB in front of the MLflow service: HTTPS with an ACM certificate, HTTP redirected."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from infra.components.log_bucket import LogBucket
from infra.nag import acknowledge
from mlplatform.config import MlflowSettings
from mlplatform.names import MLFLOW_PORT

__all__ = ["MlflowLoadBalancer"]


class MlflowLoadBalancer(Construct):
    """ALB, listeners and the target group the Fargate service registers in.

    With a certificate: HTTPS on 443 and port 80 redirecting to it, unless the environment sets
    ``mlflow.allow_http = true``, in which case port 80 forwards too. Without a certificate only
    ``allow_http = true`` is accepted (checked earlier, in mlplatform.release.cdk_context), and
    port 80 forwards.
    Exposes ``alb``, ``security_group``, ``target_group``, ``ports`` (listener ports clients may
    use) and ``scheme`` ("https" or "http", what clients should use).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MlflowSettings,
        vpc: ec2.IVpc,
        vpc_cidr: str,
        private_subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(scope, construct_id)
        https = settings.certificate_arn is not None
        self.scheme = "https" if https else "http"
        self.ports = ([443] if https else []) + ([80] if settings.allow_http else [])
        self.security_group = self._security_group(settings, vpc, vpc_cidr)
        self.alb = self._alb(settings, vpc, private_subnets)
        self.target_group = self._target_group(vpc)
        self._listeners(settings)

    def _security_group(
        self, settings: MlflowSettings, vpc: ec2.IVpc, vpc_cidr: str
    ) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="MLflow ALB: listeners open to the VPC (or the internet if not internal)",
            allow_all_outbound=False,
        )
        clients = ec2.Peer.ipv4(vpc_cidr) if settings.internal else ec2.Peer.any_ipv4()
        # Port 80 is open in both modes: it either forwards (allow_http) or redirects.
        for port in sorted({*self.ports, 80}):
            group.add_ingress_rule(clients, ec2.Port.tcp(port), f"MLflow clients on {port}")
        if not settings.internal:
            acknowledge(
                group,
                "AwsSolutions-EC23",
                "mlflow.internal = false in environments.toml: this MLflow ALB is meant to be "
                "reached from the internet; MLflow basic auth guards every route but /health.",
            )
        return group

    def _alb(
        self, settings: MlflowSettings, vpc: ec2.IVpc, private_subnets: ec2.SubnetSelection
    ) -> elbv2.ApplicationLoadBalancer:
        alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=vpc,
            internet_facing=not settings.internal,
            vpc_subnets=private_subnets
            if settings.internal
            else ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=self.security_group,
            drop_invalid_header_fields=True,
            idle_timeout=cdk.Duration.seconds(120),
        )
        alb.log_access_logs(LogBucket(self, "AccessLogs").bucket, prefix="alb")
        return alb

    def _target_group(self, vpc: ec2.IVpc) -> elbv2.ApplicationTargetGroup:
        return elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=vpc,
            port=MLFLOW_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path="/health",
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(15),
                timeout=cdk.Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )

    def _listeners(self, settings: MlflowSettings) -> None:
        """HTTPS on 443 with a certificate; port 80 forwarding (allow_http) or redirecting."""
        forward = elbv2.ListenerAction.forward([self.target_group])
        if settings.certificate_arn is not None:
            self.alb.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(str(settings.certificate_arn))],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_action=forward,
                open=False,
            )
        http_action = (
            forward
            if settings.allow_http
            else elbv2.ListenerAction.redirect(protocol="HTTPS", port="443", permanent=True)
        )
        self.alb.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            default_action=http_action,
            open=False,
        )
