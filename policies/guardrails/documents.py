"""IAM-style policy documents (identity policies and SQS/SNS/EventBridge resource policies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .core import InvalidJson, as_list, json_value, mapping, wildcard_match


class InvalidPolicyDocument(ValueError):
    pass


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    principals: tuple[str, ...]
    """Every principal value (`"*"`, or the values of {"AWS": ..., "Service": ...})."""
    condition: Mapping[str, Any]

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"

    def action_patterns(self) -> tuple[str, ...]:
        """The actions the statement may apply to; `NotAction` can mean almost anything: `*`."""
        return ("*",) if self.not_actions else self.actions

    def resource_patterns(self) -> tuple[str, ...]:
        return ("*",) if self.not_resources else self.resources

    def any_principal(self) -> bool:
        return "*" in self.principals


def parse_policy(document: Any) -> list[Statement]:
    """The statements of a policy given as a JSON string or as a mapping."""
    try:
        data = json_value(document)
    except InvalidJson as error:
        raise InvalidPolicyDocument(f"is not valid JSON ({error})") from error
    if not isinstance(data, Mapping):
        raise InvalidPolicyDocument("is not a JSON object")
    statements = []
    for raw in as_list(data.get("Statement")):
        if not isinstance(raw, Mapping):
            raise InvalidPolicyDocument("has a Statement that is not an object")
        statements.append(
            Statement(
                effect=str(raw.get("Effect", "")),
                actions=_strings(raw.get("Action")),
                not_actions=_strings(raw.get("NotAction")),
                resources=_strings(raw.get("Resource")),
                not_resources=_strings(raw.get("NotResource")),
                principals=_principals(raw.get("Principal")),
                condition=mapping(raw.get("Condition")),
            )
        )
    return statements


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in as_list(value))


def _principals(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        return tuple(str(v) for values in value.values() for v in as_list(values))
    return _strings(value)


def action_matches(pattern: str, action: str) -> bool:
    """Does an action pattern (`s3:Get*`, `*`) cover `action`? Action names ignore case."""
    return wildcard_match(pattern, action, ignore_case=True)


def actions_for_services(patterns: Iterable[str], services: Iterable[str]) -> list[str]:
    """The patterns that can apply to any action of one of `services` (`dynamodb:GetItem`, `dynamodb:*`, `*`)."""
    wanted = tuple(services)
    found = []
    for pattern in patterns:
        prefix = pattern.split(":", 1)[0] if ":" in pattern else pattern
        if any(wildcard_match(prefix, service, ignore_case=True) for service in wanted) and (
            ":" in pattern or pattern == "*"
        ):
            found.append(pattern)
    return found


def condition_is_false(statement: Statement, key: str) -> bool:
    """Does the statement apply only when the boolean condition `key` is false (`{"Bool": {key: "false"}}`)?"""
    for operator, block in statement.condition.items():
        if operator not in ("Bool", "BoolIfExists"):
            continue
        for name, value in mapping(block).items():
            if name.lower() == key.lower() and any(str(v).lower() == "false" for v in as_list(value)):
                return True
    return False
