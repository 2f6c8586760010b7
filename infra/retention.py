"""Map a day count from environments.toml to a CloudWatch Logs retention CloudFormation accepts."""

from __future__ import annotations

from aws_cdk import aws_logs as logs

from mlplatform.errors import ConfigError

__all__ = ["retention_days"]

# CloudWatch Logs accepts only these values; the settings model does not know them, so the
# check happens here, at synth, with a one-line message naming the key.
_RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention_days(days: int, key: str) -> logs.RetentionDays:
    """Return the RetentionDays for ``days``, or raise ConfigError naming ``key``.

    >>> retention_days(30, "mlflow.log_retention_days") is logs.RetentionDays.ONE_MONTH
    True
    """
    try:
        return _RETENTION[days]
    except KeyError:
        # Deliberately without its cause: the KeyError says nothing the message does not.
        raise ConfigError(
            f"{key}: {days} is not a CloudWatch Logs retention; use one of {sorted(_RETENTION)}"
        ) from None
