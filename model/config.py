"""Typed stack configuration: read once, validated before any resource is declared.

Every value a stack can set lives in its `Pulumi.<stack>.yaml` under the `microservices:` namespace
(structured values are YAML objects; Pulumi hands them to the program as JSON). `load_stack_config()`
turns them into frozen pydantic models. A bad value stops the program with ONE line that names the
stack, the key, the value and what is allowed, raised as `ConfigError` (a `pulumi.RunError`, which the
Pulumi CLI prints without a traceback). Service sizing is merged over each service spec's defaults
here too, so a Fargate CPU/memory pair AWS would reject is caught before anything is declared.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal, get_args, get_origin

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from model.aws_limits import FARGATE_SPOT_ARM64_SOURCE, postgres_version_problem
from model.errors import ConfigError

PROJECT = "microservices"
"""The project name in Pulumi.yaml, and so the config namespace (`microservices:<key>`)."""

ENVIRONMENTS = ("dev", "staging", "prod")

# AWS Fargate task sizes: cpu units -> allowed memory (MiB).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# The only values CloudWatch Logs accepts for retentionInDays (0 would mean "never expire",
# which we do not allow: logs without retention grow cost forever).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _describe_range(values: Sequence[int]) -> str:
    if len(values) > 6 and all(b - a == values[1] - values[0] for a, b in itertools.pairwise(values)):
        return f"{values[0]} to {values[-1]} in steps of {values[1] - values[0]}"
    return ", ".join(str(v) for v in values)


class _Model(BaseModel):
    """Base for config sections: camelCase keys as Pulumi users write them, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=False
    )


class NetworkConfig(_Model):
    cidr: str = "10.0.0.0/16"
    """VPC IPv4 CIDR, /16 to /24 (smaller blocks cannot hold three subnet tiers per AZ)."""
    az_count: int = Field(2, ge=2, le=6)
    """Availability zones to spread subnets over."""
    nat_gateways: Literal["single", "onePerAz"] = "single"
    """`single` (cheap, one AZ's NAT serves all) or `onePerAz` (no cross-AZ dependency)."""
    flow_log_retention_days: int = 30

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"must be an IPv4 network in CIDR form such as 10.0.0.0/16 ({exc})") from None
        if not 16 <= network.prefixlen <= 24:
            raise ValueError("prefix length must be between /16 and /24")
        if not network.is_private:
            raise ValueError("must be a private (RFC 1918) range")
        return value

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _log_retention(value)


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be a CloudWatch Logs retention value: {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


class ComputeConfig(_Model):
    capacity: Literal["spot", "onDemand", "mixed"] = "onDemand"
    """`spot`: FARGATE_SPOT only; `onDemand`: FARGATE only; `mixed`: an on-demand base plus Spot."""
    cpu_architecture: Literal["ARM64", "X86_64"] = "ARM64"
    """CPU of every Fargate task. ARM64 (Graviton) costs about 20% less on demand but cannot run on
    Fargate Spot, so `spot` and `mixed` need X86_64 (checked below). Images must support it."""
    on_demand_base: int = Field(0, ge=0, le=100000)
    """Tasks that always run on FARGATE before the weights apply (`mixed` only)."""
    spot_weight: int = Field(3, ge=1, le=1000)
    on_demand_weight: int = Field(1, ge=0, le=1000)
    enable_execute_command: bool = False
    """ECS Exec into running tasks. Off unless the environment allows interactive access."""
    container_insights: bool = True

    @model_validator(mode="after")
    def _spot_runs_x86_only(self) -> ComputeConfig:
        if self.cpu_architecture == "ARM64" and self.capacity != "onDemand":
            raise ValueError(
                f"cpuArchitecture ARM64 cannot run on Fargate Spot (capacity {self.capacity}); use capacity "
                f"onDemand with ARM64, or cpuArchitecture X86_64 with Spot ({FARGATE_SPOT_ARM64_SOURCE})"
            )
        return self


class DataConfig(_Model):
    multi_az: bool = False
    deletion_protection: bool = False
    protect_resources: bool = False
    """Set `protect` and `retainOnDelete` on data stores: `pulumi destroy` cannot remove them."""
    backup_retention_days: int = Field(7, ge=1, le=35)
    db_instance_class: str = Field("db.t4g.micro", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    db_allocated_storage_gb: int = Field(20, ge=20, le=65536)
    cache_node_type: str = Field("cache.t4g.micro", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    postgres_version: str = "16.11"
    """RDS PostgreSQL engine version of every service database; one AWS still lets you create
    (the dated list in model/data/rds-postgres-versions.json)."""
    performance_insights: bool = True

    @field_validator("postgres_version")
    @classmethod
    def _postgres_version(cls, value: str) -> str:
        problem = postgres_version_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ObservabilityConfig(_Model):
    log_retention_days: int = 30
    alarm_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    """Where alarm notifications go (an SNS email subscription); none if unset."""
    tracing: bool = True

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _log_retention(value)


class EdgeConfig(_Model):
    domain_name: str | None = Field(None, pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$")
    """Public DNS name with an ACM certificate; without one, a self-signed certificate is imported."""
    hosted_zone_id: str | None = None
    waf_rate_limit: int = Field(2000, ge=10, le=2_000_000_000)
    """Requests per 5 minutes per client IP before WAF blocks it (AWS minimum is 10)."""
    api_throttle_rate: int = Field(100, ge=1)
    api_throttle_burst: int = Field(200, ge=1)
    jwt_issuer: str | None = Field(default=None, pattern=r"^https://[^\s/]+(/\S*)?$")
    """OIDC issuer URL (https) of a JWT authorizer on every API Gateway route; unset: routes have no
    authorizer (the services authenticate callers themselves)."""
    jwt_audience: tuple[str, ...] = ()
    """Accepted `aud` claims of that authorizer; required (at least one) when `jwtIssuer` is set."""

    @model_validator(mode="after")
    def _jwt_issuer_and_audience(self) -> EdgeConfig:
        if self.jwt_issuer and not self.jwt_audience:
            raise ValueError("jwtAudience must list at least one audience when jwtIssuer is set")
        if self.jwt_audience and not self.jwt_issuer:
            raise ValueError("jwtIssuer must be set when jwtAudience is set")
        if any(not aud.strip() for aud in self.jwt_audience):
            raise ValueError("jwtAudience entries must not be empty")
        return self


class MeshConfig(_Model):
    certificate_authority: Literal["selfManaged", "privateCa"] = "selfManaged"
    """`privateCa`: AWS Private CA (audited, HSM-backed); `selfManaged`: a CA key kept as a Pulumi secret."""
    trust_domain: str = Field("microservices.internal", pattern=r"^([a-z0-9-]+\.)*[a-z0-9-]+$")
    cert_validity_hours: int = Field(24 * 30, ge=24, le=24 * 397)
    cert_renewal_hours: int = Field(24 * 7, ge=1)

    @model_validator(mode="after")
    def _renewal_inside_validity(self) -> MeshConfig:
        if self.cert_renewal_hours >= self.cert_validity_hours:
            raise ValueError(
                f"certRenewalHours ({self.cert_renewal_hours}) must be less than certValidityHours "
                f"({self.cert_validity_hours})"
            )
        return self


class EventsConfig(_Model):
    archive_retention_days: int = Field(30, ge=0, le=36500)
    """Days the EventBridge archive keeps events for replay (0 keeps them indefinitely)."""
    max_receive_count: int = Field(5, ge=1, le=1000)
    """Deliveries before a message moves to its dead-letter queue."""


LambdaTrafficShift = Literal[
    "allAtOnce",
    "canary10Percent5Minutes",
    "canary10Percent10Minutes",
    "canary10Percent15Minutes",
    "canary10Percent30Minutes",
    "linear10PercentEvery1Minute",
    "linear10PercentEvery2Minutes",
    "linear10PercentEvery3Minutes",
    "linear10PercentEvery10Minutes",
]
"""CodeDeploy's predefined Lambda deployment configurations (`CodeDeployDefault.Lambda<Name>`), see
https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html#deployment-configuration-lambda"""

DeploymentStrategy = Literal["rolling", "blueGreen", "canary", "linear"]
"""How ECS replaces a service's revision: rolling update, or shifting ALB traffic (blue/green, canary, linear)."""

DEFAULT_STRATEGY: dict[str, DeploymentStrategy] = {"dev": "rolling", "staging": "blueGreen", "prod": "canary"}
DEFAULT_LAMBDA_SHIFT: dict[str, str] = {
    "dev": "allAtOnce",
    "staging": "linear10PercentEvery1Minute",
    "prod": "canary10Percent5Minutes",
}


class DeploymentConfig(_Model):
    """How new revisions reach production traffic (ECS native deployment strategies, 2025).

    Ranges are the ECS API's (`DeploymentConfiguration.bakeTimeInMinutes` 0-1440, canary percent
    0.1-100, linear step percent 3-100; pulumi-aws 7.51 `aws.ecs.Service.deploymentConfiguration`).
    A service without a load balancer cannot shift traffic, so it deploys `rolling` whatever this
    says (still with alarm-based rollback)."""

    strategy: DeploymentStrategy | None = None
    """Default per environment: dev `rolling`, staging `blueGreen`, prod `canary`."""
    bake_time_minutes: int = Field(10, ge=0, le=1440)
    """Blue/green, canary, linear: minutes both revisions run after production traffic moved (rollback window)."""
    canary_percent: float = Field(10.0, ge=0.1, le=100.0)
    canary_bake_time_minutes: int = Field(5, ge=0, le=1440)
    linear_step_percent: float = Field(20.0, ge=3.0, le=100.0)
    linear_step_bake_time_minutes: int = Field(2, ge=0, le=1440)
    alarm_rollback: bool = True
    """Roll back when one of the service's own 5xx or p99 latency alarms fires (ECS `alarms`)."""
    test_header: str = Field("x-deployment-test", pattern=r"^[a-z0-9-]{1,40}$")
    """Header (value `green`) that routes a request from inside the VPC to the new revision."""
    lambda_traffic_shift: LambdaTrafficShift | None = None
    """The notification Lambda's CodeDeploy traffic shift; default dev `allAtOnce`, staging
    `linear10PercentEvery1Minute`, prod `canary10Percent5Minutes`."""

    def effective_strategy(self, environment: str) -> DeploymentStrategy:
        return self.strategy or DEFAULT_STRATEGY[environment]

    def effective_lambda_shift(self, environment: str) -> str:
        return self.lambda_traffic_shift or DEFAULT_LAMBDA_SHIFT[environment]


class UsageAssumptions(_Model):
    """What `python -m offline cost` assumes about usage the plan cannot know (monthly figures).
    Resources themselves (counts, sizes, classes) come from the plan; only traffic comes from here."""

    hours_per_month: float = Field(730.0, gt=0, le=744)
    spot_discount_percent: float = Field(70.0, ge=0, lt=100)
    """Fargate Spot price below on-demand (AWS advertises "up to 70%"; Spot prices vary)."""
    nat_processed_gb: float = Field(50.0, ge=0)
    """GB through each NAT gateway."""
    alb_lcu: float = Field(1.0, ge=0)
    """Average LCUs per load balancer (the hourly charge bills at least what is consumed)."""
    api_requests_millions: float = Field(1.0, ge=0)
    lambda_requests_millions: float = Field(1.0, ge=0)
    lambda_avg_duration_ms: float = Field(100.0, ge=0)
    events_millions: float = Field(1.0, ge=0)
    """Custom events put on the bus (and archived)."""
    event_size_kb: float = Field(1.0, gt=0)
    sqs_requests_millions: float = Field(3.0, ge=0)
    """Per queue (send, receive, delete)."""
    sns_publishes_millions: float = Field(1.0, ge=0)
    step_function_transitions_thousands: float = Field(100.0, ge=0)
    dynamodb_write_millions: float = Field(1.0, ge=0)
    dynamodb_read_millions: float = Field(5.0, ge=0)
    dynamodb_storage_gb: float = Field(1.0, ge=0)
    log_ingest_gb: float = Field(5.0, ge=0)
    """Per log group."""
    log_stored_gb: float = Field(5.0, ge=0)
    """Per log group, after retention (archived storage)."""
    kms_requests_millions: float = Field(1.0, ge=0)
    """Per key."""
    secrets_api_calls_thousands: float = Field(10.0, ge=0)
    """Per secret."""
    waf_requests_millions: float = Field(1.0, ge=0)
    """Per web ACL."""
    container_insights_metrics_per_service: int = Field(10, ge=0)
    private_ca_certificates: int = Field(10, ge=0)
    """Certificates issued per month by each private CA."""
    s3_storage_gb: float = Field(5.0, ge=0)
    """Per bucket (ALB access logs)."""
    ecr_storage_gb: float = Field(1.0, ge=0)
    """Per ECR repository (the service images this program builds)."""


class ServiceSizing(_Model):
    """Per-stack sizing of one Fargate service (merged over the service spec's defaults)."""

    image: str | None = None
    cpu: int = 256
    memory: int = 512
    desired_count: int = Field(1, ge=1, le=1000)
    min_count: int = Field(1, ge=1, le=1000)
    max_count: int = Field(2, ge=1, le=1000)
    cpu_target_percent: int = Field(60, ge=10, le=95)

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if value not in FARGATE_MEMORY_BY_CPU:
            raise ValueError(f"must be a Fargate CPU size: {', '.join(map(str, FARGATE_MEMORY_BY_CPU))}")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        if cpu in FARGATE_MEMORY_BY_CPU and value not in FARGATE_MEMORY_BY_CPU[cpu]:
            raise ValueError(
                f"is not a Fargate memory size for cpu {cpu}; allowed: {_describe_range(FARGATE_MEMORY_BY_CPU[cpu])}"
            )
        return value

    @model_validator(mode="after")
    def _counts(self) -> ServiceSizing:
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError(
                f"counts must satisfy minCount <= desiredCount <= maxCount, got {self.min_count} <= "
                f"{self.desired_count} <= {self.max_count}"
            )
        return self


class ServiceOverrides(_Model):
    """What a stack may override per service; checked against each other once merged (see
    `resolve_sizing`), because a valid memory depends on the cpu the spec may set."""

    image: str | None = Field(None, min_length=1)
    cpu: int | None = None
    memory: int | None = None
    desired_count: int | None = Field(None, ge=1, le=1000)
    min_count: int | None = Field(None, ge=1, le=1000)
    max_count: int | None = Field(None, ge=1, le=1000)
    cpu_target_percent: int | None = Field(None, ge=10, le=95)


class StackConfig(_Model):
    """Everything one environment stack configures."""

    environment: Literal["dev", "staging", "prod"]
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    network: NetworkConfig = NetworkConfig()
    compute: ComputeConfig = ComputeConfig()
    data: DataConfig = DataConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    edge: EdgeConfig = EdgeConfig()
    mesh: MeshConfig = MeshConfig()
    events: EventsConfig = EventsConfig()
    deployment: DeploymentConfig = DeploymentConfig()
    usage: UsageAssumptions = UsageAssumptions()
    """Traffic assumptions for the cost estimate (`python -m offline cost`); no resource reads them."""
    services: dict[str, ServiceOverrides] = Field(default_factory=dict)
    """Per-service overrides keyed by service name; services not listed use their spec defaults."""
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.environment == "prod"

    def base_tags(self) -> dict[str, str]:
        return {**self.tags, "Project": PROJECT, "Environment": self.environment, "ManagedBy": "pulumi"}


# --- reading and error reporting ------------------------------------------------------------------

_SECTION_KEYS = tuple(field.alias or name for name, field in StackConfig.model_fields.items() if name != "region")


def _format_loc(loc: Sequence[int | str]) -> str:
    head, *rest = [str(p) for p in loc] or [""]
    key = "aws:region" if head == "region" else f"{PROJECT}:{head}"
    return ".".join([key, *rest])


def _value_at(raw: Mapping[str, Any], loc: Sequence[int | str]) -> Any:
    value: Any = raw
    for part in loc:
        if isinstance(value, Mapping):
            if part not in value:
                return None
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The config model that holds the key at `loc` (to list allowed keys for an unknown one)."""
    model: Any = StackConfig
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            fields = {f.alias or n: f for n, f in model.model_fields.items()}
            model = fields[str(part)].annotation if str(part) in fields else None
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        else:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _describe_error(
    stack: str, raw: Mapping[str, Any], error: Mapping[str, Any], total: int, secret: Collection[str] = ()
) -> str:
    loc = [p for p in error["loc"] if not str(p).startswith("function-")]
    key = _format_loc(loc)
    value = _value_at(raw, loc)
    if loc and str(loc[0]) in secret:
        value = SecretValue()
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
        problem = f"unknown key; allowed keys here: {', '.join(allowed)}"
        shown = f"{key}"
    elif kind == "missing":
        problem = "is required but not set"
        shown = key
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        problem = message
        # A check across several keys of a section names the values it involves itself: show the section's
        # key, not every value in it (most of them defaults the user never wrote).
        cross_field = kind == "value_error" and isinstance(value, (dict, list))
        shown = key if cross_field else f"{key} = {_show(value)}"
    more = f" (and {total - 1} more problem{'s' if total > 2 else ''})" if total > 1 else ""
    return f"stack '{stack}': config {shown}: {problem}{more}"


def _all_project_config(namespace: str) -> dict[str, Any]:
    """Every `<namespace>:<key>` value set for this stack, parsed from JSON where Pulumi passed JSON.

    pulumi.Config only answers for keys we ask about; to reject unknown keys we need the full set,
    which the runtime keeps in its config map (set from PULUMI_CONFIG by the language host).
    """
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    result: dict[str, Any] = {}
    for full_key, value in values.items():
        if not full_key.startswith(f"{namespace}:"):
            continue
        parsed = value
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
        result[full_key.split(":", 1)[1]] = parsed
    return result


class SecretValue:
    """Stands in for a secret config value in messages: its value is never shown."""

    def __repr__(self) -> str:
        return "[secret]"


def _show(value: Any) -> str:
    return "[secret]" if isinstance(value, SecretValue) else json.dumps(value)


def parse_stack_config(stack: str, raw: Mapping[str, Any], secret: Collection[str] = ()) -> StackConfig:
    """Validate raw config values (already parsed from YAML/JSON) for one stack.

    `secret` names the top-level keys (`network`, `region`, ...) whose values are secret: messages
    name those keys but never show their values.
    """
    unknown = sorted(set(raw) - {*_SECTION_KEYS, "region"})
    if unknown:
        allowed = ", ".join(f"{PROJECT}:{k}" for k in _SECTION_KEYS)
        raise ConfigError(
            f"stack '{stack}': config {PROJECT}:{unknown[0]}: unknown key; allowed keys: {allowed}, aws:region"
        )
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        raise ConfigError(_describe_error(stack, raw, errors[0], len(errors), secret)) from None


def load_stack_config() -> StackConfig:
    """Read and validate this stack's config from the Pulumi runtime (before any resource exists)."""
    from pulumi.runtime.config import is_config_secret

    stack = pulumi.get_stack()
    raw = _all_project_config(PROJECT)
    region = pulumi.Config("aws").get("region")
    if region is not None:
        raw["region"] = region
    if "region" not in raw:
        raise ConfigError(f"stack '{stack}': config aws:region is required but not set (e.g. us-east-1)")
    secret = {key for key in raw if is_config_secret("aws:region" if key == "region" else f"{PROJECT}:{key}")}
    return parse_stack_config(stack, raw, secret)


_BUILT_IN_SIZING = ServiceSizing()


def resolve_sizing(
    stack: str,
    config: StackConfig,
    service: str,
    defaults: Mapping[str, Any],
    *,
    spec_file: str | None = None,
) -> ServiceSizing:
    """The effective sizing of one service: spec defaults overlaid with the stack's overrides.

    `defaults` are the spec's (`sizing` plus `image`), from `spec_file` (default `services/<name>.py`).
    An error names where each value it involves comes from, the stack file's key or the spec file, and
    shows only those values.
    """
    overrides = config.services.get(service)
    stack_values = overrides.model_dump(exclude_unset=True, by_alias=True) if overrides else {}
    merged = {**defaults, **stack_values}
    spec_file = spec_file or f"services/{service}.py"

    def origin(key: str) -> str:
        if key in stack_values:
            return f"stack '{stack}': config {PROJECT}:services.{service}.{key}"
        field = key if key == "image" else f"sizing.{key}"
        return f"service spec {spec_file}: {field}"

    def source(key: str) -> str:
        """How a second value involved in an error is named: its key and where it comes from."""
        if key in stack_values:
            return f"{key} = {merged[key]} ({PROJECT}:services.{service}.{key} in stack '{stack}')"
        if key in defaults:
            return f"{key} = {merged[key]} ({spec_file} sizing.{key})"
        field = ServiceSizing.model_fields[to_snake(key)]
        return f"{key} = {field.default} (the default; set {PROJECT}:services.{service}.{key} to change it)"

    try:
        return ServiceSizing.model_validate(merged)
    except ValidationError as exc:
        errors = exc.errors()
        error = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        loc = [p for p in error["loc"] if not str(p).startswith("function-")]
        if not loc:  # the count ordering (the only model-level check)
            raise ConfigError(_counts_error(merged, origin, source) + more) from None
        key = str(loc[0])
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(f.alias or n for n, f in ServiceSizing.model_fields.items()))
            raise ConfigError(f"{origin(key)}: unknown sizing key; allowed: {allowed}{more}") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        if key == "memory" and "memory" not in merged:  # the built-in memory does not fit the cpu set
            allowed = _describe_range(FARGATE_MEMORY_BY_CPU[merged["cpu"]])
            raise ConfigError(
                f"{origin('cpu')} = {merged['cpu']}: needs memory set too: {source('memory')} is not a Fargate "
                f"memory size for this cpu; allowed: {allowed}{more}"
            ) from None
        if key == "memory" and "cpu" in merged and origin("cpu") != origin("memory").replace("memory", "cpu"):
            message = message.replace(f"for cpu {merged['cpu']}", f"for {source('cpu')}")
        raise ConfigError(f"{origin(key)} = {json.dumps(merged.get(key))}: {message}{more}") from None


def _counts_error(merged: Mapping[str, Any], origin: Any, source: Any) -> str:
    """minCount <= desiredCount <= maxCount, broken: name the first pair out of order, and only it."""
    value = {key: merged.get(key, ServiceSizing.model_fields[to_snake(key)].default) for key in _COUNTS}
    for low, high in (("minCount", "desiredCount"), ("desiredCount", "maxCount"), ("minCount", "maxCount")):
        if value[low] > value[high]:
            # Blame the value the user wrote (a stack key before a spec default before a built-in default).
            blamed, other, relation = (low, high, "at most") if low in merged else (high, low, "at least")
            return f"{origin(blamed)} = {value[blamed]}: must be {relation} {source(other)}"
    return f"{origin('minCount')}: counts must satisfy minCount <= desiredCount <= maxCount"


_COUNTS = ("minCount", "desiredCount", "maxCount")
