"""Network stack: VPC shape, NAT per environment, endpoints when isolated, flow logs."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra.naming import availability_zones

INTERFACE_SERVICES = (
    "ecr.api",
    "ecr.dkr",
    "logs",
    "secretsmanager",
    "sts",
    "kms",
    "sagemaker.api",
    "sagemaker.runtime",
)


def _interface_services(synth) -> set[str]:
    found = set()
    for res in synth.template_json("network")["Resources"].values():
        if (
            res["Type"] == "AWS::EC2::VPCEndpoint"
            and res["Properties"].get("VpcEndpointType") == "Interface"
        ):
            name = res["Properties"]["ServiceName"]
            prefix = f"com.amazonaws.{synth.settings.region}."
            assert isinstance(name, str) and name.startswith(prefix), name
            found.add(name.removeprefix(prefix))
    return found


def test_vpc_spans_configured_zones_with_public_and_private_subnets(each_variant):
    env = each_variant.settings
    t = each_variant.template("network")
    t.resource_count_is("AWS::EC2::VPC", 1)
    t.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": env.network.cidr})
    t.resource_count_is("AWS::EC2::Subnet", 2 * env.network.max_azs)
    zones = {
        r["Properties"]["AvailabilityZone"]
        for r in each_variant.template_json("network")["Resources"].values()
        if r["Type"] == "AWS::EC2::Subnet"
    }
    assert zones == set(availability_zones(env))
    public = t.find_resources("AWS::EC2::Subnet", {"Properties": {"MapPublicIpOnLaunch": True}})
    assert len(public) == env.network.max_azs


def test_nat_gateways_follow_settings(each_variant):
    env = each_variant.settings
    each_variant.template("network").resource_count_is(
        "AWS::EC2::NatGateway", env.network.nat_gateways
    )


def test_without_nat_private_subnets_have_no_default_route(each_variant):
    if each_variant.settings.network.nat_gateways:
        return  # the NAT case is covered by test_nat_gateways_follow_settings
    routes = each_variant.template("network").find_resources(
        "AWS::EC2::Route", {"Properties": {"DestinationCidrBlock": "0.0.0.0/0"}}
    )
    # Only the public subnets route to the internet gateway; isolated ones route nowhere.
    assert len(routes) == each_variant.settings.network.max_azs
    assert all("GatewayId" in r["Properties"] for r in routes.values())


def test_endpoints_carry_the_traffic_when_isolated(each_variant):
    isolated = each_variant.settings.network.nat_gateways == 0
    services = _interface_services(each_variant)
    assert services == (set(INTERFACE_SERVICES) if isolated else set())
    gateways = each_variant.template("network").find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}}
    )
    assert [".s3" in json.dumps(g["Properties"]["ServiceName"]) for g in gateways.values()] == [
        True
    ]


def test_endpoint_security_group_admits_only_https_from_the_vpc(staging):
    t = staging.template("network")
    t.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("endpoints"),
            "SecurityGroupIngress": [
                Match.object_like(
                    {"CidrIp": staging.settings.network.cidr, "FromPort": 443, "ToPort": 443}
                )
            ],
        },
    )


def test_flow_logs_capture_all_traffic_with_retention(each_env):
    t = each_env.template("network")
    t.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "ResourceType": "VPC"})
    t.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"RetentionInDays": each_env.settings.network.flow_log_retention_days},
    )
