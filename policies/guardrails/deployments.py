"""Deployments: in production every service rolls back on its own alarms.

ECS services: `alarms` (the `DeploymentAlarms` of the ECS API, `deploymentConfiguration.alarms` in
CloudFormation) must be enabled with rollback and name at least one alarm; this applies to every
deployment strategy (rolling, blue/green, canary, linear). Lambda functions deployed through CodeDeploy:
the deployment group must stop on its alarms and roll back (`DEPLOYMENT_STOP_ON_ALARM`).
"""

from __future__ import annotations

from collections.abc import Iterator

from .core import (
    PRODUCTION_ENVIRONMENTS_SCHEMA,
    Config,
    EnforcementLevel,
    Resource,
    ResourceRule,
    Severity,
    as_list,
    is_production,
    mapping,
    of_types,
    production_label,
    truthy,
)

ECS_SERVICE = "aws:ecs/service:Service"
CODEDEPLOY_GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"


def _ecs_service(resource: Resource, where: str) -> Iterator[str]:
    alarms = mapping(resource.props.get("alarms"))
    label = f"ECS service '{resource.name}'"
    if not alarms:
        yield f"{label} has no deployment alarms {where} (alarms: enable, rollback and the service's own alarm names)."
        return
    if not truthy(alarms.get("enable")):
        yield f"{label} does not watch its deployment alarms {where} (alarms.enable: true)."
    if not truthy(alarms.get("rollback")):
        yield f"{label} does not roll back when a deployment alarm fires {where} (alarms.rollback: true)."
    if not as_list(alarms.get("alarmNames")):
        yield f"{label} names no deployment alarm {where} (alarms.alarmNames)."


def _codedeploy_group(resource: Resource, where: str) -> Iterator[str]:
    label = f"CodeDeploy deployment group '{resource.name}'"
    alarm_config = mapping(resource.props.get("alarmConfiguration"))
    if not truthy(alarm_config.get("enabled")) or not as_list(alarm_config.get("alarms")):
        yield f"{label} watches no alarms {where} (alarmConfiguration: enabled with alarms)."
    rollback = mapping(resource.props.get("autoRollbackConfiguration"))
    events = [str(e) for e in as_list(rollback.get("events"))]
    if not truthy(rollback.get("enabled")) or "DEPLOYMENT_STOP_ON_ALARM" not in events:
        yield (
            f"{label} does not roll back when an alarm stops a deployment {where} "
            "(autoRollbackConfiguration: enabled, events include DEPLOYMENT_STOP_ON_ALARM)."
        )


def check_alarm_rollback(resource: Resource, config: Config) -> Iterator[str]:
    if not is_production(resource, config):
        return
    where = f"in production ({production_label(resource)})"
    if resource.resource_type == ECS_SERVICE:
        yield from _ecs_service(resource, where)
    else:
        yield from _codedeploy_group(resource, where)


DEPLOYMENT_ALARM_ROLLBACK = ResourceRule(
    name="deployment-alarm-rollback",
    description=(
        "In production, every ECS service rolls back a deployment on its own CloudWatch alarms, and every CodeDeploy "
        "deployment group (the Lambda traffic shift) stops and rolls back on its alarms."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Set alarms={enable: true, rollback: true, alarmNames: [the service's 5xx and p99 alarms]} on the ECS service "
        "(microservices:deployment.alarmRollback: true); give CodeDeploy groups alarmConfiguration and "
        "autoRollbackConfiguration with DEPLOYMENT_STOP_ON_ALARM."
    ),
    config_schema={"productionEnvironments": PRODUCTION_ENVIRONMENTS_SCHEMA},
    applies=of_types(ECS_SERVICE, CODEDEPLOY_GROUP),
    check=check_alarm_rollback,
)

RULES = [DEPLOYMENT_ALARM_ROLLBACK]
