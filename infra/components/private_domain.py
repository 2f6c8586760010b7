"""The name clients reach MLflow by: a private hosted zone with an alias record to the ALB."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct

__all__ = ["PrivateDomain"]


class PrivateDomain(Construct):
    """A private hosted zone named exactly ``domain_name``, in ``vpc``, aliasing it to ``alb``.

    Without it clients see only the ALB's own DNS name, which no certificate covers, so HTTPS
    could not validate. The zone is the name itself rather than its parent (``prod.internal``):
    it claims this one name, so other names under the parent, served by another zone or a
    Resolver rule, keep resolving in the VPC; and since the app creates the VPC, no other zone of
    the same name can already be associated with it. The stack owns the zone, so synth needs no
    lookup of an existing one. Exposes ``zone`` and ``record``.

        PrivateDomain(self, "Domain", domain_name="mlflow.prod.internal", vpc=vpc, alb=alb)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_name: str,
        vpc: ec2.IVpc,
        alb: elbv2.IApplicationLoadBalancer,
    ) -> None:
        super().__init__(scope, construct_id)
        self.zone = route53.PrivateHostedZone(
            self,
            "Zone",
            zone_name=domain_name,
            vpc=vpc,
            comment=f"{domain_name}: the MLflow ALB, for clients in the VPC",
        )
        # An alias at the zone apex: follows the ALB's addresses, costs no queries, and a CNAME
        # could not sit at an apex.
        self.record = route53.ARecord(
            self,
            "Alias",
            zone=self.zone,
            target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(alb)),
            comment="MLflow ALB",
        )
