"""Security-group rules of a synthesized stack, inline and standalone, for the egress tests.

    rules = egress(prod, "mlflow", "ServiceSecurityGroup0A1B2C3D")
    [("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 3306, 3306, "import:...DatabaseSecurityGroup...")]

A rule is (protocol, from port, to port, destination); the destination is the CIDR, or the
security group as ``ref:<logical id>`` (same stack) or ``import:<export name>`` (another stack).
Ports given as a token (a database's ``Endpoint.Port``) are shown as ``"token"``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["NO_TRAFFIC", "Rule", "destination", "egress", "group_of"]

Rule = tuple[str, Any, Any, str]

# The rule CDK writes for allow_all_outbound=False with no other rule: without any egress rule,
# EC2 would give the group its default allow-all rule.
NO_TRAFFIC: Rule = ("icmp", 252, 86, "255.255.255.255/32")


def destination(value: Any) -> str:
    """A rule's target as text: a CIDR, ``ref:<logical id>`` or ``import:<export name>``."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        return f"ref:{value['Fn::GetAtt'][0]}"
    if "Fn::ImportValue" in value:
        return f"import:{value['Fn::ImportValue']}"
    raise AssertionError(f"unexpected reference {json.dumps(value)}")


def _port(value: Any) -> Any:
    return value if isinstance(value, int) or value is None else "token"


def _rule(props: dict) -> Rule:
    target = next(
        props[key]
        for key in ("CidrIp", "CidrIpv6", "DestinationSecurityGroupId", "DestinationPrefixListId")
        if key in props
    )
    ports = (_port(props.get("FromPort")), _port(props.get("ToPort")))
    return (props["IpProtocol"], *ports, destination(target))


def egress(synth: Any, part: str, logical_id: str) -> list[Rule]:
    """Every egress rule of group ``logical_id`` in stack ``part``, inline and standalone."""
    resources = synth.template_json(part)["Resources"]
    group = resources[logical_id]
    assert group["Type"] == "AWS::EC2::SecurityGroup", logical_id
    rules = [_rule(r) for r in group["Properties"].get("SecurityGroupEgress", [])]
    for res in resources.values():
        if res["Type"] == "AWS::EC2::SecurityGroupEgress" and res["Properties"]["GroupId"] == {
            "Fn::GetAtt": [logical_id, "GroupId"]
        }:
            rules.append(_rule(res["Properties"]))
    return sorted(rules, key=str)


def group_of(reference: Any) -> str:
    """The logical id behind ``{"Fn::GetAtt": [id, "GroupId"]}``."""
    target = destination(reference)
    assert target.startswith("ref:"), target
    return target.removeprefix("ref:")
