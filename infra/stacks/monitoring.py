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

from mlplatform.config import Environment, MonitoringSettings
from mlplatform.names import Output

__all__ = ["MonitoringStack"]

_FIVE_MINUTES = cdk.Duration.minutes(5)
_GIB = 1024**3
# An alarm's metric, threshold, comparison and what it means when it fires.
_AlarmSpec = tuple[cw.IMetric, float, cw.ComparisonOperator, str]


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
        prefix = settings.name_prefix
        self.topic = self._topic(settings)
        metrics = {
            **self._load_balancer_metrics(settings.monitoring, alb, target_group),
            **self._service_metrics(settings.monitoring, service),
            **self._database_metrics(settings.monitoring, database),
        }
        self.alarms = self._alarms(prefix, metrics)
        self.dashboard = self._dashboard(prefix, alb, target_group)
        cdk.CfnOutput(self, Output.ALARM_TOPIC_ARN, value=self.topic.topic_arn)
        cdk.CfnOutput(self, Output.DASHBOARD_NAME, value=self.dashboard.dashboard_name)

    def _topic(self, settings: Environment) -> sns.Topic:
        """The encrypted topic every alarm notifies, with one e-mail subscription per address."""
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
        topic = sns.Topic(
            self, "Alarms", topic_name=f"{prefix}-alarms", master_key=key, enforce_ssl=True
        )
        # A topic nobody subscribes to turns every alarm into silence; AWS mails each address a
        # confirmation link, and the subscription delivers once it is followed.
        for email in settings.monitoring.alarm_emails:
            topic.add_subscription(subs.EmailSubscription(email))
        return topic

    @staticmethod
    def _load_balancer_metrics(
        mon: MonitoringSettings,
        alb: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
    ) -> dict[str, _AlarmSpec]:
        lb_metrics = alb.metrics
        return {
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
                target_group.metrics.unhealthy_host_count(
                    period=cdk.Duration.minutes(1), statistic="Maximum"
                ),
                1,
                cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                "an MLflow task fails GET /health",
            ),
        }

    @staticmethod
    def _service_metrics(
        mon: MonitoringSettings, service: ecs.FargateService
    ) -> dict[str, _AlarmSpec]:
        return {
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
        }

    @staticmethod
    def _database_metrics(
        mon: MonitoringSettings, database: rds.DatabaseInstance
    ) -> dict[str, _AlarmSpec]:
        return {
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

    def _alarms(self, prefix: str, metrics: dict[str, _AlarmSpec]) -> dict[str, cw.Alarm]:
        """One alarm per metric, notifying the topic when it fires and when it clears."""
        action = cw_actions.SnsAction(self.topic)
        alarms: dict[str, cw.Alarm] = {}
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
            alarms[name] = alarm
        return alarms

    def _dashboard(
        self,
        prefix: str,
        alb: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
    ) -> cw.Dashboard:
        """Every alarm's state, then requests, latency and running tasks."""
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-mlflow")
        dashboard.add_widgets(
            *(
                cw.AlarmWidget(title=name, alarm=alarm, width=8)
                for name, alarm in self.alarms.items()
            )
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Requests and latency",
                left=[alb.metrics.request_count(period=cdk.Duration.minutes(1))],
                right=[alb.metrics.target_response_time(period=cdk.Duration.minutes(1))],
                width=12,
            ),
            cw.GraphWidget(
                title="Running tasks",
                left=[target_group.metrics.healthy_host_count(period=cdk.Duration.minutes(1))],
                width=12,
            ),
        )
        return dashboard
