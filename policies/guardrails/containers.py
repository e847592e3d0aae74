"""ECS task definitions (container definitions) and clusters."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .core import (
    TASK_DEFINITION,
    Config,
    EnforcementLevel,
    InvalidJson,
    Resource,
    ResourceRule,
    Severity,
    as_list,
    json_value,
    mapping,
    of_types,
    truthy,
)

ECS_CLUSTER = "aws:ecs/cluster:Cluster"
ContainerCheck = Callable[[str, Mapping[str, Any]], Iterable[str]]


def container_definitions(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers of a task definition (`containerDefinitions` is a JSON string)."""
    data = json_value(props.get("containerDefinitions"))
    if not isinstance(data, list):
        raise InvalidJson("containerDefinitions is not a JSON array")
    return [mapping(c) for c in data]


def _each_container(resource: Resource, check: ContainerCheck) -> Iterator[str]:
    """Run `check(label, container)` on every container (or say why the definitions cannot be read)."""
    try:
        definitions = container_definitions(resource.props)
    except InvalidJson as error:
        yield f"task definition '{resource.name}': containerDefinitions cannot be read ({error})."
        return
    for container in definitions:
        yield from check(f"container '{container.get('name')}' of task definition '{resource.name}'", container)


# --- logging --------------------------------------------------------------------------------------
def check_logging(resource: Resource, _config: Config) -> Iterator[str]:
    def check(label: str, container: Mapping[str, Any]) -> Iterator[str]:
        if not mapping(container.get("logConfiguration")).get("logDriver"):
            yield f"{label} has no logConfiguration: send its logs to CloudWatch (awslogs or awsfirelens)."

    yield from _each_container(resource, check)


ECS_CONTAINER_LOGGING = ResourceRule(
    name="ecs-container-logging",
    description="Every container of an ECS task definition sends its logs somewhere (logConfiguration).",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Give every container a logConfiguration with the awslogs driver and the service's log group.",
    applies=of_types(TASK_DEFINITION),
    check=check_logging,
)


# --- secrets --------------------------------------------------------------------------------------
SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|SECRET_?KEY|ACCESS_?KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
"""A variable whose name ENDS with a secret noun holds one (DB_PASSWORD, STRIPE_API_KEY); one where the noun
only qualifies the last word does not (PASSWORD_MIN_LENGTH, TOKEN_TTL_SECONDS, API_KEY_HEADER)."""
SECRETS_MANAGER_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")


def check_plaintext_secrets(resource: Resource, config: Config) -> Iterator[str]:
    allowed = set(config.get("allowedEnvironmentNames") or ())

    def check(label: str, container: Mapping[str, Any]) -> Iterator[str]:
        for entry in as_list(container.get("environment")):
            name, value = str(mapping(entry).get("name", "")), mapping(entry).get("value")
            if name in allowed or not SECRET_NAME.search(name) or value in (None, ""):
                continue
            if isinstance(value, str) and value.startswith("arn:"):
                continue  # a reference to a secret (e.g. DB_SECRET_ARN), not the secret itself
            yield (
                f"{label} passes '{name}' as a plain environment value; inject it from Secrets Manager "
                "through `secrets` (valueFrom = the secret's ARN)."
            )
        for entry in as_list(container.get("secrets")):
            secret, source = mapping(entry).get("name"), str(mapping(entry).get("valueFrom", ""))
            if not SECRETS_MANAGER_ARN.match(source):
                yield f"{label} reads secret '{secret}' from '{source}', which is not a Secrets Manager secret ARN."

    yield from _each_container(resource, check)


ECS_NO_PLAINTEXT_SECRETS = ResourceRule(
    name="ecs-no-plaintext-secrets",
    description=(
        "Containers get secrets from Secrets Manager (`secrets`), never as plain `environment` values "
        "(names ending in PASSWORD, SECRET, TOKEN, API_KEY, PRIVATE_KEY, ACCESS_KEY or CREDENTIALS with a value)."
    ),
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Store the value in AWS Secrets Manager and list it under the container's `secrets` with "
        "valueFrom = the secret ARN (optionally `:json-key::`); grant the execution role "
        "secretsmanager:GetSecretValue on that ARN only."
    ),
    config_schema={
        "allowedEnvironmentNames": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Environment variable names that match the secret pattern but hold no secret.",
        }
    },
    applies=of_types(TASK_DEFINITION),
    check=check_plaintext_secrets,
)


# --- privileges -----------------------------------------------------------------------------------
def check_privileged(resource: Resource, _config: Config) -> Iterator[str]:
    def check(label: str, container: Mapping[str, Any]) -> Iterator[str]:
        if truthy(container.get("privileged")):
            yield f"{label} runs privileged; remove `privileged: true` (Fargate rejects it as well)."

    yield from _each_container(resource, check)


ECS_NO_PRIVILEGED_CONTAINERS = ResourceRule(
    name="ecs-no-privileged-containers",
    description="No container of an ECS task definition runs privileged.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Remove `privileged` from the container definition; grant narrow Linux capabilities if needed.",
    applies=of_types(TASK_DEFINITION),
    check=check_privileged,
)


def check_readonly_root(resource: Resource, _config: Config) -> Iterator[str]:
    def check(label: str, container: Mapping[str, Any]) -> Iterator[str]:
        if not truthy(container.get("readonlyRootFilesystem")):
            yield f"{label} has a writable root filesystem; set readonlyRootFilesystem: true."

    yield from _each_container(resource, check)


ECS_READONLY_ROOT_FILESYSTEM = ResourceRule(
    name="ecs-readonly-root-filesystem",
    description="Containers should run with a read-only root filesystem (recommendation).",
    severity=Severity.LOW,
    enforcement=EnforcementLevel.ADVISORY,
    remediation=(
        "Set readonlyRootFilesystem: true and mount a task volume (or bind mount) where the process must write "
        "(e.g. /tmp)."
    ),
    applies=of_types(TASK_DEFINITION),
    check=check_readonly_root,
)


# --- cluster --------------------------------------------------------------------------------------
def check_container_insights(resource: Resource, _config: Config) -> Iterator[str]:
    settings = [mapping(s) for s in as_list(resource.props.get("settings"))]
    value = next((s.get("value") for s in settings if s.get("name") == "containerInsights"), None)
    if value not in ("enabled", "enhanced"):
        yield (
            f"ECS cluster '{resource.name}' does not enable CloudWatch Container Insights "
            f"(settings containerInsights = {value or 'unset'})."
        )


ECS_CONTAINER_INSIGHTS = ResourceRule(
    name="ecs-container-insights",
    description="ECS clusters have CloudWatch Container Insights enabled.",
    severity=Severity.LOW,
    enforcement=EnforcementLevel.MANDATORY,
    remediation='Add settings=[{"name": "containerInsights", "value": "enhanced"}] (or "enabled") to the cluster.',
    applies=of_types(ECS_CLUSTER),
    check=check_container_insights,
)

RULES = [
    ECS_CONTAINER_LOGGING,
    ECS_NO_PLAINTEXT_SECRETS,
    ECS_NO_PRIVILEGED_CONTAINERS,
    ECS_READONLY_ROOT_FILESYSTEM,
    ECS_CONTAINER_INSIGHTS,
]
