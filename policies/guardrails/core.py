"""Plumbing shared by every guardrail: resource views, rule wrappers, config, ancestry, tags.

A rule is PURE logic: a function from lightweight resource views (anything with the attributes
pulumi_policy passes, see `Resource` and `StackResource`) and a config mapping to violation
messages. `ResourceRule.policy()` / `StackRule.policy()` wrap it into the pulumi_policy object the
pack serves, so the same function runs under `pulumi preview --policy-pack`, in the offline
preview and in the unit tests (which pass plain fakes).

Unknown values: pulumi_policy raises `UnknownValueError` when a rule reads a value that is not
known during preview, and the engine then reports "can't run policy ... during preview" instead of
a violation. Resource rules let it propagate as is. Stack rules look at many resources, so one
unknown value must not hide the violations of all the others: `each()` runs the per-item checks,
reports everything it could decide, and re-raises the first unknown at the end so the engine still
says the policy could not fully run.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

__all__ = [
    "EnforcementLevel",
    "Finding",
    "Resource",
    "ResourceRule",
    "Severity",
    "StackResource",
    "StackRule",
    "UnknownValueError",
]

T = TypeVar("T")
Config = Mapping[str, Any]


# --------------------------------------------------------------------------------------------------
# Resource views: the attributes pulumi_policy's ResourceValidationArgs / PolicyResource carry.
# --------------------------------------------------------------------------------------------------
class Resource(Protocol):
    """What a resource rule sees (pulumi_policy.ResourceValidationArgs has these, props = inputs)."""

    @property
    def resource_type(self) -> str: ...
    @property
    def props(self) -> Mapping[str, Any]: ...
    @property
    def urn(self) -> str: ...
    @property
    def name(self) -> str: ...


class StackResource(Resource, Protocol):
    """What a stack rule sees (pulumi_policy.PolicyResource has these, props = outputs)."""

    @property
    def parent(self) -> StackResource | None: ...
    @property
    def dependencies(self) -> Sequence[StackResource]: ...
    @property
    def property_dependencies(self) -> Mapping[str, Sequence[StackResource]]: ...


@dataclass(frozen=True)
class Finding:
    """One stack-rule violation: the message and the URN of the resource to fix (None: the stack)."""

    message: str
    urn: str | None = None


ResourceCheck = Callable[[Resource, Config], Iterable[str]]
StackCheck = Callable[[Sequence[StackResource], Config], Iterable[Finding]]


# --------------------------------------------------------------------------------------------------
# Rules and their pulumi_policy wrappers.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Rule:
    name: str
    description: str
    severity: Severity
    enforcement: EnforcementLevel
    remediation: str
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """JSON-schema properties of the policy's config; every property has a `default`."""

    def settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The schema defaults overlaid with the configured values (the engine applies the defaults
        too, but a runner that does not must get the same behaviour)."""
        merged = {key: prop["default"] for key, prop in self.config_schema.items() if "default" in prop}
        merged.update(overrides or {})
        return merged

    def policy(self) -> ResourceValidationPolicy | StackValidationPolicy:
        """The pulumi_policy object the pack serves."""
        raise NotImplementedError

    def _policy_fields(self) -> dict[str, Any]:
        """What every served policy (resource or stack) takes from the rule, besides `validate`."""
        schema = (
            PolicyConfigSchema(properties={key: dict(prop) for key, prop in self.config_schema.items()})
            if self.config_schema
            else None
        )
        return {
            "name": self.name,
            "description": self.description,
            "enforcement_level": self.enforcement,
            "config_schema": schema,
            "severity": self.severity,
            "remediation_steps": self.remediation,
        }


@dataclass(frozen=True, kw_only=True)
class ResourceRule(Rule):
    """A rule over one resource's inputs, for the resource types `applies` accepts."""

    applies: Callable[[str], bool]
    check: ResourceCheck

    def run(self, resource: Resource, overrides: Mapping[str, Any] | None = None) -> list[str]:
        """The violation messages for `resource` (empty when the rule does not apply)."""
        if not self.applies(resource.resource_type):
            return []
        return list(self.check(resource, self.settings(overrides)))

    def policy(self) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            from .exceptions import excepted

            if not self.applies(args.resource_type):
                return
            for message in self.check(args, self.settings(args.get_config())):
                if not excepted(self.name, args.urn, message):
                    report(message, None)

        return ResourceValidationPolicy(validate=validate, **self._policy_fields())


SHARED_MODEL = "__sharedModel"
"""Settings key under which a served stack rule receives the stack's shared model (see `StackRule.model`)."""


@dataclass(frozen=True, kw_only=True)
class StackRule(Rule):
    """A rule over every resource of the stack (outputs, parents and dependencies)."""

    check: StackCheck
    model: Callable[[Sequence[StackResource], str], Any] | None = None
    """For rules that query the access model: returns the model shared by every rule of one
    `AnalyzeStack` (built once). The served policy passes it as `settings[SHARED_MODEL]`; `run()`
    (tests) passes nothing, and the check builds its own."""

    def run(self, resources: Sequence[StackResource], overrides: Mapping[str, Any] | None = None) -> list[Finding]:
        return list(self.check(resources, self.settings(overrides)))

    def policy(self) -> StackValidationPolicy:
        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            settings = self.settings(args.get_config())
            if self.model is not None:
                settings[SHARED_MODEL] = self.model(args.resources, self.name)
            from .exceptions import RULES as exception_rules
            from .exceptions import excepted

            own = any(rule.name == self.name for rule in exception_rules)
            stack_urn = next((r.urn for r in args.resources if r.resource_type == "pulumi:pulumi:Stack"), "")
            for finding in self.check(args.resources, settings):
                if own or not excepted(self.name, finding.urn or stack_urn, finding.message):
                    report(finding.message, finding.urn)

        return StackValidationPolicy(validate=validate, **self._policy_fields())


def of_types(*types: str) -> Callable[[str], bool]:
    accepted = frozenset(types)
    return lambda resource_type: resource_type in accepted


class Deferred:
    """Runs per-item checks so that an unknown value in one item does not hide the findings of the
    others: the first UnknownValueError is kept and re-raised by `finish()`, after every pass."""

    def __init__(self) -> None:
        self.error: UnknownValueError | None = None

    def each(self, items: Iterable[T], check: Callable[[T], Iterable[Finding]]) -> Iterator[Finding]:
        for item in items:
            try:
                found = list(check(item))
            except UnknownValueError as error:
                self.error = self.error or error
                continue
            yield from found

    def finish(self) -> None:
        if self.error is not None:
            raise self.error


def each(items: Iterable[T], check: Callable[[T], Iterable[Finding]]) -> Iterator[Finding]:
    """One-pass `Deferred`: the findings of `check` for every item, then the first unknown, if any."""
    deferred = Deferred()
    yield from deferred.each(items, check)
    deferred.finish()


def known(props: Mapping[str, Any], key: str) -> Any:
    """`props[key]`, or None when absent OR unknown during preview.

    Only for values a rule uses to *find* a relation (a name or ARN to match), never for a value a
    rule *judges*: an unknown ARN only means that no literal can name it yet (whatever refers to it
    is then an Output and shows up as a dependency, which the rules check instead).
    """
    try:
        return props.get(key)
    except UnknownValueError:
        return None


# --------------------------------------------------------------------------------------------------
# Values.
# --------------------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """A deep copy with pulumi_policy's proxies turned into dicts and lists (reads every value, so an
    unknown anywhere inside raises UnknownValueError)."""
    if isinstance(value, Mapping):
        return {str(key): plain(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item) for item in value]
    return value


def as_list(value: Any) -> list[Any]:
    """A JSON-ish value that may be one item or a list of items, as a list (None: empty)."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def truthy(value: Any) -> bool:
    """True for true and "true" (a few pulumi-aws booleans travel as strings)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class InvalidJson(ValueError):
    pass


def json_value(value: Any) -> Any:
    """A property that holds a JSON document (string) or the document itself, as plain data."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise InvalidJson(str(error)) from error
    return plain(value)


# --------------------------------------------------------------------------------------------------
# Type tokens of the platform's components and the AWS resources several rules share.
# --------------------------------------------------------------------------------------------------
FARGATE_SERVICE = "microservices:service:FargateMicroservice"
NOTIFICATION_FUNCTION = "microservices:notification:NotificationFunction"
SERVICE_TYPES = frozenset({FARGATE_SERVICE, NOTIFICATION_FUNCTION})
DATA_COMPONENT_PREFIX = "microservices:data:"
EDGE_COMPONENT = "microservices:edge:Edge"

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
SECRET = "aws:secretsmanager/secret:Secret"

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
DYNAMODB_TABLE = "aws:dynamodb/table:Table"
CACHE_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
DATABASE_TYPES: Mapping[str, str] = {
    RDS_INSTANCE: "RDS instance",
    RDS_CLUSTER: "RDS cluster",
    DYNAMODB_TABLE: "DynamoDB table",
    CACHE_REPLICATION_GROUP: "ElastiCache replication group",
    CACHE_CLUSTER: "ElastiCache cluster",
}
"""Every database type and how messages name it."""


# --------------------------------------------------------------------------------------------------
# Ancestry and ownership.
# --------------------------------------------------------------------------------------------------
def ancestors(resource: StackResource) -> Iterator[StackResource]:
    """Parent, grandparent, ... up to the stack."""
    current = resource.parent
    depth = 0
    while current is not None and depth < 1000:
        yield current
        current = current.parent
        depth += 1


def service_owners(resource: StackResource) -> list[StackResource]:
    """The service components (FargateMicroservice / NotificationFunction) above `resource`, nearest
    first. A service component owns itself."""
    chain = [resource, *ancestors(resource)]
    return [r for r in chain if r.resource_type in SERVICE_TYPES]


def service_owner(resource: StackResource) -> StackResource | None:
    owners = service_owners(resource)
    return owners[0] if owners else None


def urn_ancestor_types(urn: str) -> tuple[str, ...]:
    """The types of a resource's ancestors, read from its URN (`...::parentType$type::name`).

    Resource rules see no parent object, but the URN's qualified type names the whole chain."""
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return ()
    return tuple(parts[2].split("$")[:-1])


def in_data_component(resource: StackResource) -> bool:
    return any(a.resource_type.startswith(DATA_COMPONENT_PREFIX) for a in ancestors(resource))


def depends_on(resource: StackResource) -> Iterator[StackResource]:
    """Every resource `resource` depends on, through `dependsOn` or any property."""
    yield from resource.dependencies
    for deps in resource.property_dependencies.values():
        yield from deps


def property_deps(resource: StackResource, prop: str, resource_type: str | None = None) -> list[StackResource]:
    deps = resource.property_dependencies.get(prop) or []
    return [d for d in deps if resource_type is None or d.resource_type == resource_type]


# --------------------------------------------------------------------------------------------------
# Tags and environments.
# --------------------------------------------------------------------------------------------------
def tags(resource: Resource) -> Mapping[str, Any]:
    """`tags`, completed by `tagsAll` (outputs) when `Environment` is not among them."""
    own = mapping(resource.props.get("tags"))
    if "Environment" in own:
        return own
    return {**mapping(resource.props.get("tagsAll")), **own}


def environment(resource: Resource) -> str | None:
    value = tags(resource).get("Environment")
    return value if isinstance(value, str) and value else None


PRODUCTION_ENVIRONMENTS_SCHEMA: Mapping[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "default": ["prod"],
    "description": "Values of the Environment tag that count as production.",
}


def is_production(resource: Resource, config: Config) -> bool:
    """Production when the Environment tag is one of `productionEnvironments`; an untagged resource
    is treated as production (a guardrail fails closed)."""
    env = environment(resource)
    return env is None or env in set(config.get("productionEnvironments") or ())


def production_label(resource: Resource) -> str:
    env = environment(resource)
    return f"Environment={env}" if env else "no Environment tag, treated as production"


# --------------------------------------------------------------------------------------------------
# IAM-style wildcards.
# --------------------------------------------------------------------------------------------------
HOLE = "\x00"
"""Stands for an unknown part of a name or ARN: only a `*` in a pattern can cover it."""


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` any one character (not a HOLE)."""
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "[^\x00]" if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))
