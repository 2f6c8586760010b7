"""Monitoring stack: alarms on the ALB, MLflow service and database, and a dashboard.

Every alarm notifies one KMS-encrypted SNS topic, to which each configured address subscribes
(``monitoring.alarm_emails``; mlplatform.config requires one for prod).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from mlplatform.config import Environment
from mlplatform.names import Output

__all__ = ["MonitoringStack"]

_FIVE_MINUTES = cdk.Duration.minutes(5)
_GIB = 1024**3


class MonitoringStack(cdk.Stack):
    """Exposes ``topic`` (alarm notifications), ``alarms`` (by short name) and ``dashboard``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Environment,
        alb: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        service: ecs.FargateService,
        database: rds.DatabaseInstance,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        mon = settings.monitoring
        prefix = settings.name_prefix

        key = kms.Key(
            self,
            "TopicKey",
            alias=f"alias/{prefix}/alarms",
            description=f"{prefix}: alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes to an encrypted topic only if it may use the topic's key.
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self, "Alarms", topic_name=f"{prefix}-alarms", master_key=key, enforce_ssl=True
        )
        # A topic nobody subscribes to turns every alarm into silence; AWS mails each address a
        # confirmation link, and the subscription delivers once it is followed.
        for email in mon.alarm_emails:
            self.topic.add_subscription(subs.EmailSubscription(email))

        lb_metrics = alb.metrics
        tg_metrics = target_group.metrics
        metrics: dict[str, tuple[cw.IMetric, float, cw.ComparisonOperator, str]] = {
            "Alb5xx": (
                cw.MathExpression(
                    expression="elb + target",
                    using_metrics={
                        "elb": lb_metrics.http_code_elb(
                            code=elbv2.HttpCodeElb.ELB_5XX_COUNT, period=_FIVE_MINUTES
                        ),
                        "target": lb_metrics.http_code_target(
                            code=elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=_FIVE_MINUTES
                        ),
                    },
                    label="5xx (ALB + MLflow)",
                    period=_FIVE_MINUTES,
                ),
                mon.http_5xx_alarm_count,
                cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                "MLflow answered 5xx (from the ALB or the tasks)",
            ),
            "UnhealthyHosts": (
                tg_metrics.unhealthy_host_count(
                    period=cdk.Duration.minutes(1), statistic="Maximum"
                ),
                1,
                cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                "an MLflow task fails GET /health",
            ),
            "ServiceCpu": (
                service.metric_cpu_utilization(period=_FIVE_MINUTES),
                mon.cpu_alarm_percent,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "MLflow tasks' average CPU is high",
            ),
            "ServiceMemory": (
                service.metric_memory_utilization(period=_FIVE_MINUTES),
                mon.memory_alarm_percent,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "MLflow tasks' average memory is high",
            ),
            "DatabaseCpu": (
                database.metric_cpu_utilization(period=_FIVE_MINUTES),
                mon.cpu_alarm_percent,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "the MLflow database's CPU is high",
            ),
            "DatabaseFreeStorage": (
                database.metric_free_storage_space(period=_FIVE_MINUTES, statistic="Minimum"),
                mon.database_free_storage_alarm_gib * _GIB,
                cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                "the MLflow database is running out of storage",
            ),
            "DatabaseConnections": (
                database.metric_database_connections(period=_FIVE_MINUTES, statistic="Maximum"),
                mon.database_connections_alarm,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "the MLflow database has many connections",
            ),
        }
        action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}
        for name, (metric, threshold, comparison, what) in metrics.items():
            alarm = cw.Alarm(
                self,
                name,
                alarm_name=f"{prefix}-{name}",
                alarm_description=f"{prefix}: {what}",
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=3 if name != "UnhealthyHosts" else 2,
                datapoints_to_alarm=2,
                # No data means no traffic or no errors: not an incident by itself.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[name] = alarm

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-mlflow")
        self.dashboard.add_widgets(
            *(
                cw.AlarmWidget(title=name, alarm=alarm, width=8)
                for name, alarm in self.alarms.items()
            )
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Requests and latency",
                left=[lb_metrics.request_count(period=cdk.Duration.minutes(1))],
                right=[lb_metrics.target_response_time(period=cdk.Duration.minutes(1))],
                width=12,
            ),
            cw.GraphWidget(
                title="Running tasks",
                left=[tg_metrics.healthy_host_count(period=cdk.Duration.minutes(1))],
                width=12,
            ),
        )
        cdk.CfnOutput(self, Output.ALARM_TOPIC_ARN, value=self.topic.topic_arn)
        cdk.CfnOutput(self, Output.DASHBOARD_NAME, value=self.dashboard.dashboard_name)
