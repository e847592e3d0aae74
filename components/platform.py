"""Composition of one environment: which components exist and how they are wired together.

`build_platform` reads like the architecture diagram (ARCHITECTURE.md): the shared foundation (key,
network, cluster, alarm topic, mesh, bus, edge), then one builder per service kind found in
`SERVICE_BUILDERS` (`fargate`, `lambda`; a new kind is one more entry), then the wiring between them
(`components/wiring.py`) and the watch over everything. Every component is whole when its constructor
returns; wiring is declared after the things it wires.

`PlatformInputs.resolve` finishes all validation (sizing merged over spec defaults) before
`build_platform` declares the first resource, so a bad stack never ends half-built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import Cluster, ClusterArgs, capacity_strategy
from components.context import PlatformContext
from components.edge import Edge, EdgeArgs
from components.envoy import EDGE_PORT
from components.events import EventBus, EventBusArgs
from components.images import ServiceImage, ServiceImageArgs
from components.kms import PlatformKey, PlatformKeyArgs
from components.mesh import ServiceMesh, ServiceMeshArgs
from components.microservice import AlbAttachment, FargateMicroservice, FargateMicroserviceArgs, Rollout, TaskRuntime
from components.network import Network, NetworkArgs
from components.notification import LambdaService, LambdaServiceArgs, LambdaSettings
from components.observability import (
    Observability,
    ObservabilityArgs,
    PlatformWatch,
    PlatformWatchArgs,
    ServiceMetrics,
)
from components.patterns import PatternContext
from components.patterns.wiring import Patterns, build_patterns, pattern_environment
from components.wiring import (
    EventPublishers,
    EventPublishersArgs,
    FunctionRoutes,
    FunctionRoutesArgs,
    MeshConnections,
    MeshConnectionsArgs,
)
from contracts import SCHEMA_DIR
from model.config import DeploymentConfig, ServiceSizing, StackConfig, resolve_sizing
from model.spec import ServiceSpec


@dataclass(frozen=True)
class PlatformInputs:
    stack: str
    config: StackConfig
    catalog: list[ServiceSpec]
    sizing: dict[str, ServiceSizing]

    @classmethod
    def resolve(cls, stack: str, config: StackConfig, catalog: list[ServiceSpec]) -> PlatformInputs:
        from model.errors import ConfigError

        known = {s.name for s in catalog}
        for name in config.services:
            if name not in known:
                raise ConfigError(
                    f"stack '{stack}': config microservices:services.{name}: unknown service; "
                    f"known services: {', '.join(sorted(known))}"
                )
        from services import spec_file

        sizing = {
            spec.name: resolve_sizing(
                stack,
                config,
                spec.name,
                {**spec.sizing, **({"image": spec.image} if spec.image else {})},
                spec_file=spec_file(spec),
            )
            for spec in catalog
            if spec.kind == "fargate"
        }
        built = {spec.name for spec in catalog if spec.build is not None}
        for name, resolved in sorted(sizing.items()):
            if not resolved.image and name not in built:
                raise ConfigError(
                    f"stack '{stack}': config microservices:services.{name}.image: is required but not set "
                    f"(service spec '{name}' has no default image); set a container image reference"
                )
        return cls(stack=stack, config=config, catalog=catalog, sizing=sizing)


@dataclass(frozen=True)
class Foundation:
    """What every service builder receives: the platform's shared components, built before the services."""

    inputs: PlatformInputs
    context: PlatformContext
    network: Network
    cluster: Cluster
    observability: Observability
    mesh: ServiceMesh
    events: EventBus
    edge: Edge
    patterns: PatternContext
    """What the data patterns need (sagas, outboxes, read models: components/patterns/)."""


def task_runtime(config: StackConfig) -> TaskRuntime:
    """How every Fargate task of the stack runs: its compute and observability choices."""
    return TaskRuntime(
        cpu_architecture=config.compute.cpu_architecture,
        capacity=capacity_strategy(config.compute),
        log_retention_days=config.observability.log_retention_days,
        tracing=config.observability.tracing,
        container_insights=config.compute.container_insights,
        execute_command=config.compute.enable_execute_command,
    )


def rollout(deployment: DeploymentConfig, environment: str) -> Rollout:
    """The stack's `deployment` section for a Fargate service, with the environment's default strategy."""
    return Rollout(
        strategy=deployment.effective_strategy(environment),
        bake_time_minutes=deployment.bake_time_minutes,
        canary_percent=deployment.canary_percent,
        canary_bake_time_minutes=deployment.canary_bake_time_minutes,
        linear_step_percent=deployment.linear_step_percent,
        linear_step_bake_time_minutes=deployment.linear_step_bake_time_minutes,
        alarm_rollback=deployment.alarm_rollback,
        test_header=deployment.test_header,
    )


def build_fargate_service(spec: ServiceSpec, base: Foundation) -> FargateMicroservice:
    """A container service: FargateMicroservice behind its Envoy sidecar, with its own data and alarms."""
    config, context = base.inputs.config, base.context
    name = service_component_name(context, spec.name)
    sizing = base.inputs.sizing[spec.name]
    # A reference image (a spec with `build`, unless the stack sets `image`): its own ECR repository,
    # built and pushed by `pulumi up`; the task definition pins its digest.
    image = (
        ServiceImage(
            name,
            ServiceImageArgs(
                service=spec.name,
                build=spec.build,
                cpu_architecture=config.compute.cpu_architecture,
                protect=config.data.protect_resources,
            ),
            context,
        )
        if spec.build is not None and not sizing.image
        else None
    )
    return FargateMicroservice(
        name,
        FargateMicroserviceArgs(
            spec=spec,
            sizing=sizing,
            runtime=task_runtime(config),
            store_settings=config.data,
            vpc_id=base.network.vpc_id,
            private_subnet_ids=base.network.private_subnet_ids,
            isolated_subnet_ids=base.network.isolated_subnet_ids,
            cluster_arn=base.cluster.cluster_arn,
            cluster_name=base.cluster.cluster_name,
            exec_log_group_name=base.cluster.exec_log_group_name if config.compute.enable_execute_command else None,
            alarm_topic_arn=base.observability.alarm_topic_arn,
            alarm_name_prefix=base.observability.alarm_name_prefix,
            alb=AlbAttachment.from_edge(base.edge.attachment, **base.mesh.alb_target(spec.name))
            if spec.is_public
            else None,
            # The sidecar logs to this service's log group: the component name is passed, not guessed.
            mesh=base.mesh.attachment_for(spec.name, component_name=name),
            # A service with an outbox publishes through its pipe only: no PutEvents for its task role.
            publish_bus_arn=base.events.bus_arn if spec.publishes and spec.outbox is None else None,
            consume_queue_arns=[base.events.queue_arn_for(spec.name)]
            if spec.name in base.events.queue_consumers
            else [],
            # Saga command queue / saga ARN / outbox relay mode, from fixed names (components/patterns/).
            app_environment=pattern_environment(base.inputs.catalog, base.patterns).get(spec.name, {}),
            image=image.image_ref if image is not None else None,
            image_repository_arn=image.repository_arn if image is not None else None,
            rollout=rollout(config.deployment, context.environment),
            vpc_cidr=config.network.cidr,
        ),
        context,
    )


def build_lambda_service(spec: ServiceSpec, base: Foundation) -> LambdaService:
    """A function service: LambdaService from the spec alone (its code folder, its queue and direct
    subscriptions, its DynamoDB tables, its events, the notification topic if it `notifies`)."""
    config, context = base.inputs.config, base.context
    name = service_component_name(context, spec.name)
    return LambdaService(
        name,
        LambdaServiceArgs(
            spec=spec,
            settings=LambdaSettings.for_environment(context.environment),
            queue_arn=base.events.queue_arn_for(spec.name) if spec.name in base.events.queue_consumers else None,
            topic_arn=base.events.topic_arn if spec.notifies else None,
            log_retention_days=config.observability.log_retention_days,
            tracing=config.observability.tracing,
            publish_bus_arn=base.events.bus_arn if spec.publishes else None,
            data=config.data,
            environment={"EVENT_BUS_NAME": base.events.bus_name} if spec.publishes else {},
            traffic_shift=config.deployment.effective_lambda_shift(context.environment),
        ),
        context,
    )


ServiceBuilder = Callable[[ServiceSpec, Foundation], "FargateMicroservice | LambdaService"]

SERVICE_BUILDERS: dict[str, ServiceBuilder] = {
    "fargate": build_fargate_service,
    "lambda": build_lambda_service,
}
"""One builder per service kind (`ServiceSpec.kind`); a new kind is a new entry here."""


def service_component_name(context: PlatformContext, service: str) -> str:
    """`ms-<env>-<service>`: a service's component name, the prefix of everything it owns (its log
    group `/ecs/<name>`, where its sidecar logs too; its alarms, which the alarm topic accepts because
    they start with the observability prefix `ms-<env>-`)."""
    return f"{context.prefix}-{service}"


@dataclass
class Platform:
    """Handles to the composed components, for exports and for tests."""

    context: PlatformContext
    key: PlatformKey
    network: Network
    cluster: Cluster
    edge: Edge
    events: EventBus
    mesh: ServiceMesh
    observability: Observability
    watch: PlatformWatch
    services: dict[str, FargateMicroservice] = field(default_factory=dict)
    """One FargateMicroservice per `kind == "fargate"` spec, by service name."""
    functions: dict[str, LambdaService] = field(default_factory=dict)
    """One LambdaService per `kind == "lambda"` spec, by service name."""
    patterns: Patterns | None = None
    """Sagas, outboxes and read models the specs declare (components/patterns/)."""
    wiring: list[pulumi.ComponentResource] = field(default_factory=list)
    """The components declared after the services that connect them (routes, policies, rules, watch)."""

    @property
    def notification(self) -> LambdaService | None:
        return self.functions.get("notification")

    def exports(self) -> dict[str, Any]:
        return {
            "environment": pulumi.Output.from_input(self.context.environment),
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
            "clusterName": self.cluster.cluster_name,
            "kmsKeyArn": self.key.key_arn,
            "albDnsName": self.edge.alb_dns_name,
            "apiEndpoint": self.edge.api_endpoint,
            "eventBusName": self.events.bus_name,
            "notificationTopicArn": self.events.topic_arn,
            "serviceNames": {name: s.service_name for name, s in self.services.items()},
            "serviceLogGroups": {name: s.log_group_name for name, s in self.services.items()},
            **self.mesh.exports(),
            **self.observability.exports(),
            "dashboardName": self.watch.dashboard.dashboard_name,
            **(self.patterns.exports() if self.patterns is not None else {}),
            # What .github/scripts/shift-lambda-alias.sh needs to shift each function's `live` alias.
            "lambdaDeployments": {
                name: f.deployment for name, f in sorted(self.functions.items()) if f.deployment is not None
            },
        }


def build_platform(inputs: PlatformInputs) -> Platform:
    config = inputs.config
    identity = aws.get_caller_identity()
    partition = aws.get_partition().partition
    zones = aws.get_availability_zones(state="available").names[: config.network.az_count]
    base_context = PlatformContext(
        environment=config.environment,
        account_id=identity.account_id,
        region=config.region,
        partition=partition,
        tags=config.base_tags(),
    )
    prefix = base_context.prefix

    # --- the foundation: everything the services plug into -----------------------------------------
    key = PlatformKey(prefix, PlatformKeyArgs(), base_context)
    context = base_context.with_key(key.key_arn)
    network = Network(
        prefix,
        NetworkArgs(
            config=config.network,
            availability_zones=list(zones),
            log_retention_days=config.observability.log_retention_days,
        ),
        context,
    )
    cluster = Cluster(
        prefix,
        ClusterArgs(
            capacity=capacity_strategy(config.compute),
            container_insights=config.compute.container_insights,
            log_retention_days=config.observability.log_retention_days,
        ),
        context,
    )
    observability = Observability(
        prefix,
        ObservabilityArgs(config=config.observability, container_insights=config.compute.container_insights),
        context,
    )
    mesh = ServiceMesh(
        prefix,
        ServiceMeshArgs(
            config=config.mesh,
            catalog=inputs.catalog,
            vpc_id=network.vpc_id,
            protect=config.data.protect_resources,
        ),
        context,
    )
    events = EventBus(
        prefix,
        EventBusArgs(
            config=config.events,
            catalog=inputs.catalog,
            visibility_timeouts=_lambda_visibility_timeouts(inputs),
            schema_dir=SCHEMA_DIR,
        ),
        context,
    )
    edge = Edge(
        prefix,
        EdgeArgs(
            config=config.edge,
            is_production=config.is_production,
            vpc_id=network.vpc_id,
            vpc_cidr=network.cidr_block,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            public_services=[s for s in inputs.catalog if s.kind == "fargate" and s.is_public],
            # Load balancers reach public services only through their Envoy sidecar's TLS edge port.
            target_ports=[EDGE_PORT],
            log_retention_days=config.observability.log_retention_days,
        ),
        context,
    )
    patterns_context = PatternContext(
        platform=context,
        log_retention_days=config.observability.log_retention_days,
        tracing=config.observability.tracing,
        alarm_topic_arn=observability.alarm_topic_arn,
    )
    base = Foundation(inputs, context, network, cluster, observability, mesh, events, edge, patterns_context)

    # --- the services: one builder per kind ---------------------------------------------------------
    built = {spec.name: SERVICE_BUILDERS[spec.kind](spec, base) for spec in inputs.catalog}
    services = {n: s for n, s in built.items() if isinstance(s, FargateMicroservice)}
    functions = {n: f for n, f in built.items() if isinstance(f, LambdaService)}

    # --- the data patterns, each a child of the service that owns it (components/patterns/) ---------
    patterns = build_patterns(
        inputs.catalog, patterns_context, services, events, {n: service_component_name(context, n) for n in services}
    )

    # --- the wiring between them, declared after both sides ----------------------------------------
    wiring: list[pulumi.ComponentResource] = []
    for name, function in functions.items():
        if events.direct_rules.get(name):
            routes = FunctionRoutes(
                f"{prefix}-{name}-routes",
                FunctionRoutesArgs(
                    bus=events,
                    service=name,
                    function_arn=function.invoke_arn,
                    function_name=function.function_name,
                    qualifier=function.invoke_qualifier,
                ),
            )
            wiring.append(routes)
    publishers = EventPublishers(
        f"{prefix}-publishers",
        EventPublishersArgs(
            bus=events,
            task_role_arns={
                # A service with an outbox publishes through its pipe's role (components/patterns/outbox.py).
                **{n: patterns.publisher_role_arn(n, s.task_role_arn) for n, s in services.items() if s.spec.publishes},
                **{n: f.role_arn for n, f in functions.items() if f.spec.publishes},
            },
            topic_publisher_role_arns=[f.role_arn for f in functions.values() if f.spec.notifies],
        ),
    )
    connections = MeshConnections(
        f"{prefix}-mesh-connections",
        MeshConnectionsArgs(
            mesh=mesh,
            security_group_ids={n: s.security_group_id for n, s in services.items()},
            execution_role_arns={n: s.execution_role_arn for n, s in services.items()},
        ),
    )

    # --- the watch over everything -------------------------------------------------------------------
    watch = PlatformWatch(
        f"{prefix}-watch",
        PlatformWatchArgs(
            observability=observability,
            cluster_name=cluster.cluster_name,
            services={name: ServiceMetrics.of(service) for name, service in services.items()},
            queues={
                **events.dead_letter_queue_names,
                **{f"{n}-failures": f.failure_queue_name for n, f in functions.items()},
                **patterns.dead_letter_queue_names,
            },
            functions={**{n: f.function_name for n, f in functions.items()}, **patterns.projection_functions},
            bus_name=events.bus_name,
            rule_names=[rule.name for rule in events.rules.values()] + patterns.rule_names,
        ),
    )
    return Platform(
        context=context,
        key=key,
        network=network,
        cluster=cluster,
        edge=edge,
        events=events,
        mesh=mesh,
        observability=observability,
        watch=watch,
        services=services,
        functions=functions,
        patterns=patterns,
        wiring=[*wiring, publishers, connections, watch],
    )


def _lambda_visibility_timeouts(inputs: PlatformInputs) -> dict[str, int]:
    """Each Lambda consumer's queue visibility timeout (AWS guidance: 6x the function timeout plus the
    batching window, see `LambdaSettings.queue_visibility_timeout_seconds`)."""
    settings = LambdaSettings.for_environment(inputs.config.environment)
    return {
        spec.name: settings.queue_visibility_timeout_seconds
        for spec in inputs.catalog
        if spec.kind == "lambda" and any(sub.delivery == "queue" for sub in spec.subscribes)
    }
