"""Monitoring stack: alarms to an encrypted SNS topic, and a dashboard."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

ALARMS = {
    "Alb5xx",
    "UnhealthyHosts",
    "ServiceCpu",
    "ServiceMemory",
    "DatabaseCpu",
    "DatabaseFreeStorage",
    "DatabaseConnections",
}


def test_every_alarm_notifies_the_topic(each_env):
    t = each_env.template("monitoring")
    prefix = each_env.settings.name_prefix
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    assert {
        a["Properties"]["AlarmName"].removeprefix(f"{prefix}-") for a in alarms.values()
    } == ALARMS
    (topic_id,) = t.find_resources("AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_alarm_thresholds_come_from_config(each_env):
    mon = each_env.settings.monitoring
    by_name = {
        a["Properties"]["AlarmName"].split("-")[-1]: a["Properties"]
        for a in each_env.template("monitoring").find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert by_name["ServiceCpu"]["Threshold"] == mon.cpu_alarm_percent
    assert by_name["ServiceMemory"]["Threshold"] == mon.memory_alarm_percent
    assert by_name["DatabaseConnections"]["Threshold"] == mon.database_connections_alarm
    assert (
        by_name["DatabaseFreeStorage"]["Threshold"] == mon.database_free_storage_alarm_gib * 1024**3
    )
    assert by_name["Alb5xx"]["Threshold"] == mon.http_5xx_alarm_count
    assert by_name["UnhealthyHosts"]["MetricName"] == "UnHealthyHostCount"


def test_topic_is_encrypted_and_ssl_only(each_env):
    t = each_env.template("monitoring")
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    t.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_every_configured_address_subscribes(each_variant):
    emails = each_variant.settings.monitoring.alarm_emails
    subs = each_variant.template("monitoring").find_resources("AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subs.values()) == sorted(emails)


def test_prod_alarms_reach_a_subscriber(prod):
    """Config validation requires one for prod; the template must then carry it."""
    t = prod.template("monitoring")
    (topic_id,) = t.find_resources("AWS::SNS::Topic")
    t.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": Match.any_value(), "TopicArn": {"Ref": topic_id}},
    )
    subs = t.find_resources("AWS::SNS::Subscription").values()
    assert {s["Properties"]["Endpoint"] for s in subs} == set(prod.settings.monitoring.alarm_emails)


def test_dashboard_shows_the_alarms(each_env):
    (dash,) = each_env.template("monitoring").find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dash["Properties"]["DashboardBody"])
    for name in ALARMS:
        assert name in body
