"""CloudWatch log groups: retention (and, when configured, KMS encryption)."""

from __future__ import annotations

from collections.abc import Iterator

from .core import Config, EnforcementLevel, Resource, ResourceRule, Severity, number, of_types

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def check_log_group(resource: Resource, config: Config) -> Iterator[str]:
    props = resource.props
    minimum = number(config.get("minimumRetentionDays")) or 1
    retention = number(props.get("retentionInDays"))
    if not retention:
        yield f"log group '{resource.name}' keeps logs forever; set retentionInDays."
    elif retention < minimum:
        yield (
            f"log group '{resource.name}' keeps logs {retention:g} days; retentionInDays must be at least {minimum:g}."
        )
    if config.get("requireKms") and not props.get("kmsKeyId"):
        yield f"log group '{resource.name}' is not encrypted with a KMS key (kmsKeyId)."


CLOUDWATCH_LOG_GROUP_RETENTION = ResourceRule(
    name="cloudwatch-log-group-retention",
    description="CloudWatch log groups set a retention period (and a KMS key when requireKms is set).",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Set retentionInDays per environment (e.g. 7 in dev, 30+ in prod); with requireKms, set kmsKeyId to the "
        "environment key (its key policy must allow logs.<region>.amazonaws.com)."
    ),
    config_schema={
        "minimumRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "Smallest accepted retentionInDays.",
        },
        "requireKms": {
            "type": "boolean",
            "default": False,
            "description": "Also require a KMS key (kmsKeyId) on every log group.",
        },
    },
    applies=of_types(LOG_GROUP),
    check=check_log_group,
)

RULES = [CLOUDWATCH_LOG_GROUP_RETENTION]
