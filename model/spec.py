"""The declarative shape of one microservice. Adding a service = adding one module with a `SPEC`.

A spec file (`services/<name>.py`, or `services/<name>/service.py` for a Lambda) starts with
`from model.spec import ServiceSpec, ...`: these models are the platform team's extension point and
live at the bottom of the import graph (`model/`), so the catalogue, the components and the tests all
read this one definition.

A spec says what the service IS (image, port, routes, callers it needs, data it owns, events it
publishes and consumes, secrets it reads); the stack config says how big it runs per environment.
Everything else (network identity, IAM, mesh certificates, routing, alarms) is derived from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,20}[a-z0-9]$"
"""A DNS label short enough for every AWS name we derive from it (ALB target groups allow 32 chars)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresStore(_Spec):
    """An RDS PostgreSQL instance owned by one service."""

    kind: Literal["postgres"] = "postgres"
    name: str = Field(pattern=NAME_PATTERN)
    database_name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    """The engine version is the stack's `data.postgresVersion` (validated against AWS's creatable list)."""


class DynamoStore(_Spec):
    """A DynamoDB table owned by one service."""

    kind: Literal["dynamodb"] = "dynamodb"
    name: str = Field(pattern=NAME_PATTERN)
    hash_key: str
    range_key: str | None = None
    range_key_type: Literal["S", "N"] = "S"
    """`N` for a numeric sort key, e.g. an event store's per-aggregate sequence number."""
    ttl_attribute: str | None = None
    stream: bool = False
    """Turn on the table's stream (NEW_IMAGE): required for a table declared as the service's `outbox`."""


class RedisStore(_Spec):
    """An ElastiCache (Valkey, Redis-compatible) replication group owned by one service."""

    kind: Literal["redis"] = "redis"
    name: str = Field(pattern=NAME_PATTERN)


DataStoreSpec = PostgresStore | DynamoStore | RedisStore


class Subscription(_Spec):
    """Events this service consumes from the bus.

    `queue`: delivered to the consumer's own SQS queue (with a DLQ), which it polls or which triggers
    its Lambda; `direct`: an EventBridge rule invokes the consumer's Lambda directly (Lambda only).
    """

    source: str = Field(pattern=NAME_PATTERN, description="the publishing service")
    detail_types: tuple[str, ...] = Field(min_length=1)
    delivery: Literal["queue", "direct"] = "queue"


class SecretRef(_Spec):
    """A value the container reads from Secrets Manager, injected as an environment variable."""

    env_name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    description: str


class Outbox(_Spec):
    """The service's transactional outbox / event store (seed: Event Sourcing).

    The app writes one outbox item per domain event to `store` (a DynamoDB table it owns, `stream=True`)
    in the same `TransactWriteItems` as the state change. The table's stream feeds an EventBridge Pipe
    that puts each event on the bus (see `components/patterns/outbox.py` for the item layout). A
    service with an outbox publishes ONLY through it: its task role gets no `events:PutEvents`.
    """

    store: str = Field(pattern=NAME_PATTERN)
    """Name of one of the service's own `DynamoStore`s, declared with `stream=True`."""


class ReadModel(_Spec):
    """A CQRS read model (seed: CQRS): a store the service owns, kept up to date by a projection.

    The projection is a Lambda (`services/projections/handler.py`, one generic handler) fed by its own
    SQS queue (with a DLQ) from one bus rule per publisher in `subscribes`. It writes `store` only: one
    item per `key` (detail fields that are the table's hash and range keys), holding the `fields` it
    copies from the events, the last event's type as `status`, and the ids of the events it applied.

    Idempotent and order-tolerant: an event whose id was already applied changes nothing, and the
    detail-types are ranked in the order `subscribes` lists them (the aggregate's lifecycle, e.g.
    OrderPlaced before OrderCancelled): a lower-ranked event arriving late never overwrites `status`,
    and `fields` keep the first value they were given.
    """

    name: str = Field(pattern=NAME_PATTERN)
    store: str = Field(pattern=NAME_PATTERN)
    """Name of one of the service's own `DynamoStore`s (the projection's only table)."""
    key: tuple[str, ...] = Field(min_length=1, max_length=2)
    """Detail fields holding the item key, in the table's (hash, range) order."""
    fields: tuple[str, ...] = ()
    """Detail fields copied into the item."""
    subscribes: tuple[Subscription, ...] = Field(min_length=1)

    @property
    def lifecycle(self) -> list[str]:
        """Detail-types in rank order (as listed in `subscribes`)."""
        ranked: list[str] = []
        for sub in self.subscribes:
            ranked += [t for t in sub.detail_types if t not in ranked]
        return ranked


class SagaCommand(_Spec):
    """A command the saga sends to one participant's own command queue (with a task token)."""

    participant: str = Field(pattern=NAME_PATTERN)
    command: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{1,63}$")


class SagaStep(_Spec):
    """One step of a saga: a command, and the command that undoes it if a later step fails."""

    name: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{1,63}$")
    participant: str = Field(pattern=NAME_PATTERN)
    command: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{1,63}$")
    compensation: str | None = Field(None, pattern=r"^[A-Z][A-Za-z0-9]{1,63}$")
    """Command sent to the same participant to undo this step (None: nothing to undo)."""
    timeout_seconds: int = Field(300, ge=1, le=86400)
    """The participant must answer (SendTaskSuccess/Failure) within this time."""
    heartbeat_seconds: int | None = Field(60, ge=1, le=86400)
    """The participant must call SendTaskHeartbeat at least this often while it works (None: no heartbeat)."""
    retries: int = Field(3, ge=0, le=10)
    """Retries (exponential backoff with full jitter) of transient errors: SQS errors, `Saga.Transient`."""


class Saga(_Spec):
    """A business transaction over several services (seed: Saga Pattern), orchestrated by the
    declaring service with a Step Functions Standard workflow. Steps run in order; when one fails,
    the compensations of the completed steps run in reverse (and the failed step's own compensation
    when it timed out, because its outcome is unknown), then `on_failure`, then the execution fails."""

    name: str = Field(pattern=NAME_PATTERN)
    steps: tuple[SagaStep, ...] = Field(min_length=1)
    on_failure: SagaCommand | None = None
    """Last command of a failed saga (e.g. the orchestrator cancels the order)."""

    @property
    def participants(self) -> list[str]:
        names = [s.participant for s in self.steps]
        if self.on_failure is not None:
            names.append(self.on_failure.participant)
        return sorted(set(names))

    def commands_for(self, participant: str) -> list[str]:
        """Every command (steps, compensations, on_failure) this participant must handle."""
        commands: list[str] = []
        for step in self.steps:
            if step.participant == participant:
                commands += [step.command, *([step.compensation] if step.compensation else [])]
        if self.on_failure is not None and self.on_failure.participant == participant:
            commands.append(self.on_failure.command)
        return commands


class ImageBuild(_Spec):
    """How `pulumi up` builds this service's image from the repository (components/images.py).

    Paths are relative to the project directory (where `pulumi` runs), so state and plans do not
    depend on the machine. `sources` (relative to `context`) are what the Dockerfile copies: their
    content hash is the image's immutable tag, so an unchanged service keeps its image and task."""

    context: str = Field("apps", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    dockerfile: str = Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/Dockerfile$")
    sources: tuple[str, ...] = Field(min_length=1)


REFERENCE_HEALTH_CHECK = ("CMD", "python", "-m", "apps.probe")
"""The health check of the reference images (apps/probe.py): their base has no wget or curl."""


def reference_image(name: str, port: int = 8080, health_path: str = "/health") -> dict[str, object]:
    """Spec fields of a reference service built from `apps/<name>/` (see apps/README in the README):
    the image is built from its Dockerfile, runs as 10001:10001 and is probed with the template's probe."""
    return {
        "image": "",
        "build": ImageBuild(
            dockerfile=f"apps/{name}/Dockerfile",
            sources=("__init__.py", "probe.py", "requirements.txt", "runtime", name),
        ),
        "run_as_user": "10001:10001",
        "container_port": port,
        "health_check_path": health_path,
        "health_check_command": (*REFERENCE_HEALTH_CHECK, f"http://127.0.0.1:{port}{health_path}"),
    }


class ServiceSpec(_Spec):
    name: str = Field(pattern=NAME_PATTERN)
    description: str
    kind: Literal["fargate", "lambda"] = "fargate"
    image: str = ""
    """Default container image (a stack may override it per service). Empty with `build`: built here."""
    build: ImageBuild | None = None
    """Build the image from this repository on `pulumi up` and push it to the service's own ECR
    repository (the reference services do); a stack's `image` override skips the build."""
    run_as_user: str = Field("1000:1000", pattern=r"^[1-9][0-9]*(:[1-9][0-9]*)?$")
    """Non-root `uid[:gid]` the app container runs as (root, uid 0, is not allowed)."""
    container_port: int = Field(8080, ge=1024, le=65535)
    health_check_path: str = Field("/health", pattern=r"^/")
    health_check_command: tuple[str, ...] = ()
    """The container health check (ECS `healthCheck.command`, `CMD` or `CMD-SHELL` first). Empty: a
    `wget` of the health path, for images that ship busybox/alpine wget."""
    sizing: dict[str, int] = Field(default_factory=dict)
    """Default sizing keys (`cpu`, `memory`, `desiredCount`, `minCount`, `maxCount`)."""
    public_paths: tuple[str, ...] = ()
    """Path prefixes routed from the internet (ALB and API Gateway), e.g. `/users`."""
    calls: tuple[str, ...] = ()
    """Services this one calls synchronously through the mesh (allowed by mTLS RBAC and SGs)."""
    accepts: tuple[str, ...] = ()
    """Services this one accepts calls from: the other side of `calls`. A call the callee does not
    accept is a config error; security groups and the Envoy RBAC admit exactly the callers that both
    `call` this service and are `accept`ed by it."""
    data_stores: tuple[DataStoreSpec, ...] = ()
    publishes: tuple[str, ...] = ()
    """Event detail-types this service puts on the bus (source `microservices.<name>`)."""
    subscribes: tuple[Subscription, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    code_dir: str | None = Field(None, pattern=r"^[A-Za-z0-9_./-]+$")
    """Lambda only: the function's code folder, relative to the repository root (with `handler.py`,
    entry point `handler.handle`); default `services/<name>`."""
    notifies: bool = False
    """Lambda only: the function may publish to the platform's notification SNS topic
    (`NOTIFICATION_TOPIC_ARN` in its environment)."""
    outbox: Outbox | None = None
    """Publish `publishes` through a transactional outbox table instead of calling PutEvents."""
    read_models: tuple[ReadModel, ...] = ()
    sagas: tuple[Saga, ...] = ()
    """Sagas this service orchestrates (it starts their executions)."""
    api_contract: str | None = Field(None, pattern=r"^interfaces/openapi/[a-z0-9-]+\.yaml$")
    """Path (from the repository root) of the service's OpenAPI 3.1 document."""
    uses: tuple[str, ...] = ()
    """Operations of other services it calls, as `<service>.<operationId>` (`interfaces/http.py` checks them
    against the callee's contract)."""

    @property
    def is_public(self) -> bool:
        return bool(self.public_paths)

    @property
    def event_source(self) -> str:
        return f"microservices.{self.name}"
