"""Quality gates over every environment: cdk-nag, cfn-lint, acknowledgments, no secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from cfnlint.config import ConfigMixIn
from cfnlint.runner import Runner
from conftest import STACK_PARTS, synthesize
from sg_rules import egress

from mlplatform.config import load_environments

# aws-cdk-lib acknowledges two findings of its own built-in CloudFormation validation on the
# flow log it generates (DestinationOptions casing); every other acknowledgment is the kit's.
CDK_OWN_ACKNOWLEDGMENTS = {
    ("CloudFormation-Validate::F3002", "/Vpc/FlowLog"),
    ("CloudFormation-Validate::F3003", "/Vpc/FlowLog"),
}


def _ours(acks: list[dict]) -> list[dict]:
    return [
        a
        for a in acks
        if not any(a["id"] == i and a["path"].endswith(p) for i, p in CDK_OWN_ACKNOWLEDGMENTS)
    ]


INFRA_DIR = Path(__file__).resolve().parents[3] / "infra"


def _acknowledgments(synth) -> list[dict]:
    """Every acknowledgment recorded in the cloud assembly's metadata, with its construct path."""
    found = []
    for part in STACK_PARTS:
        meta = json.loads(
            (synth.outdir / f"{synth.settings.name_prefix}-{part}.metadata.json").read_text()
        )
        for path, entries in meta.items():
            for entry in entries:
                if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    for rule_id, reason in entry["data"].items():
                        found.append({"path": path, "id": rule_id, "reason": reason})
    return found


def test_validation_report_has_no_unacknowledged_findings(each_variant):
    # Synth itself fails on a finding; this also proves the report was written and is clean.
    report = each_variant.report()
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]


def test_cdk_nag_awssolutions_runs_in_build_app(tmp_path):
    """Breaking a property (an SSH rule open to the world) must fail synth through build_app."""
    env = load_environments()["staging"]

    def break_it(app: cdk.App) -> None:
        network = app.node.find_child(f"{env.name_prefix}-network")
        sg = ec2.SecurityGroup(network, "Bad", vpc=network.vpc)  # type: ignore[attr-defined]
        sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(22))

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize(env, tmp_path / "out", mutate=break_it)
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert "AwsSolutions-EC23" in rules


def test_every_acknowledgment_states_a_specific_reason(each_variant):
    acks = _ours(_acknowledgments(each_variant))
    assert acks, "the stacks acknowledge some findings; none were found in the metadata"
    reasons = [a["reason"] for a in acks]
    for ack in acks:
        assert ack["id"].startswith(("AwsSolutions::AwsSolutions-", "CloudFormation-Validate::")), (
            ack
        )
        assert len(ack["reason"]) >= 60, ack
    # The same text on two constructs would be a blanket excuse, not a reason for each resource.
    assert len(set(reasons)) == len(reasons)


def test_acknowledgments_all_go_through_infra_nag():
    """One helper, one recorded form (plugin-qualified ids), so the audit trail is uniform."""
    sources = "".join(p.read_text() for p in INFRA_DIR.rglob("*.py") if p.name != "nag.py")
    assert ".acknowledge(" not in sources


def test_no_acknowledgment_silences_a_whole_stack(each_variant):
    stack_paths = {f"/{each_variant.settings.name_prefix}-{part}" for part in STACK_PARTS}
    ours = _ours(_acknowledgments(each_variant))
    assert not [a for a in ours if a["path"] in stack_paths]


def test_cfn_lint_passes(each_variant):
    # One cfn-lint run over the environment's five templates (rule loading dominates the cost).
    paths = [str(each_variant.template_path(part)) for part in STACK_PARTS]
    config = ConfigMixIn(["--template", *paths, "--regions", each_variant.settings.region])
    assert [str(m) for m in Runner(config).run()] == []


def test_cfn_lint_ignores_are_explicit_and_scoped(each_env):
    """The only cfn-lint ignore is W3010 on subnets (zones named so synth needs no lookup)."""
    for part in STACK_PARTS:
        for logical_id, res in each_env.template_json(part)["Resources"].items():
            ignores = (
                res.get("Metadata", {}).get("cfn-lint", {}).get("config", {}).get("ignore_checks")
            )
            if ignores:
                assert (res["Type"], ignores) == ("AWS::EC2::Subnet", ["W3010"]), logical_id


SECRET_KEYS = re.compile(
    r'"(SecretString|MasterUserPassword|Password|SecretKey)"\s*:\s*"(?!\{\{resolve:)'
)


def test_no_secret_value_in_any_template(each_variant):
    for part in STACK_PARTS:
        text = each_variant.template_path(part).read_text()
        assert not SECRET_KEYS.search(text), part
        assert (
            "sha256:" not in text or part == "mlflow"
        )  # only the image reference carries a digest


def test_stacks_carry_the_environment_tags(each_env):
    """Stack-level tags, which CloudFormation propagates to every taggable resource."""
    manifest = json.loads((each_env.outdir / "manifest.json").read_text())
    env = each_env.settings
    for part in STACK_PARTS:
        props = manifest["artifacts"][f"{env.name_prefix}-{part}"]["properties"]
        assert props["tags"] == {
            "mlplatform:environment": env.name,
            "mlplatform:prefix": env.name_prefix,
        }


def test_no_security_group_allows_all_outbound(each_variant):
    """Every group carries egress rules of its own, and none reaches every address on any port."""
    for part in STACK_PARTS:
        for logical_id, res in each_variant.template_json(part)["Resources"].items():
            if res["Type"] != "AWS::EC2::SecurityGroup":
                continue
            rules = egress(each_variant, part, logical_id)
            # A group without any egress rule keeps EC2's default rule: all traffic anywhere.
            assert rules, f"{part}/{logical_id} has no egress rule"
            open_ended = [r for r in rules if r[0] == "-1" and "/" in r[3]]
            assert not open_ended, f"{part}/{logical_id}: {open_ended}"
