"""Network stack: VPC shape, NAT per environment, endpoints and their policy, flow logs."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match
from conftest import REPO_ROOT

from mlplatform.config import load_environments
from mlplatform.errors import ConfigError
from mlplatform.names import availability_zones

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


def test_interface_endpoints_follow_the_switch(each_variant):
    # On where the environment says so (prod keeps NAT and has them), else exactly without NAT.
    net = each_variant.settings.network
    expected = set(INTERFACE_SERVICES) if net.has_interface_endpoints else set()
    assert _interface_services(each_variant) == expected
    if each_variant.settings.name == "prod":
        assert net.nat_gateways and net.has_interface_endpoints


def _text(value) -> str:
    """A template string, with Fn::Join and the partition pseudo parameter rendered."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    separator, parts = value["Fn::Join"]
    return separator.join(_text(part) for part in parts)


def _s3_endpoint_statements(synth) -> list[dict]:
    gateways = synth.template("network").find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}}
    )
    (endpoint,) = gateways.values()
    assert ".s3" in json.dumps(endpoint["Properties"]["ServiceName"])
    return endpoint["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_s3_gateway_endpoint_admits_only_the_kits_buckets(each_variant):
    env = each_variant.settings
    bucket = f"arn:aws:s3:::{env.bucket_name}"
    granted: dict[str, set[str]] = {}
    for statement in _s3_endpoint_statements(each_variant):
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
        assert "Condition" not in statement
        for resource in _as_list(statement["Resource"]):
            granted.setdefault(_text(resource), set()).update(_as_list(statement["Action"]))
    # The artifact bucket and the bucket ECR serves image layers from; not the access-log
    # buckets (only the S3 and ELB log delivery services write them, from outside the VPC).
    assert granted == {
        bucket: {"s3:ListBucket"},
        f"{bucket}/*": {
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
        },
        f"arn:aws:s3:::prod-{env.region}-starport-layer-bucket/*": {"s3:GetObject"},
    }


def test_s3_endpoint_admits_every_s3_action_the_roles_are_granted(each_env):
    # A role gaining an S3 action the endpoint does not admit would work in the emulator and
    # be refused in AWS (the endpoint policy is evaluated on every call through it).
    admitted = {a for s in _s3_endpoint_statements(each_env) for a in _as_list(s["Action"])}
    granted = set()
    for part in ("mlflow", "sagemaker"):
        for policy in each_env.template(part).find_resources("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                granted |= {a for a in _as_list(statement["Action"]) if a.startswith("s3:")}
    assert granted and granted <= admitted, granted - admitted


def test_interface_endpoints_cannot_be_off_without_nat(tmp_path):
    table = (REPO_ROOT / "environments.toml").read_text()
    staging = "[staging.network]\nnat_gateways = 0\n"
    assert staging in table
    path = tmp_path / "environments.toml"
    path.write_text(table.replace(staging, staging + "interface_endpoints = false\n"))
    with pytest.raises(ConfigError) as caught:
        load_environments(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: staging.network.interface_endpoints: false with ")
    assert "set interface_endpoints = true or nat_gateways >= 1" in message


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
