"""Composition of one environment: which components exist and how they are wired together.

`PlatformInputs.resolve` finishes all validation (sizing merged over spec defaults) before
`build_platform` declares the first resource, so a bad stack never ends half-built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import Cluster, ClusterArgs
from components.config import ServiceSizing, StackConfig, resolve_sizing
from components.edge import Edge, EdgeArgs
from components.envoy import EDGE_PORT
from components.events import EventBus, EventBusArgs
from components.images import ServiceImage, ServiceImageArgs
from components.kms import PlatformKey, PlatformKeyArgs
from components.mesh import ServiceMesh, ServiceMeshArgs
from components.microservice import AlbAttachment, FargateMicroservice, FargateMicroserviceArgs
from components.network import Network, NetworkArgs
from components.notification import NotificationFunction, NotificationFunctionArgs, NotificationSettings
from components.observability import Observability, ObservabilityArgs, ServiceMetrics
from services.notification.contracts import SCHEMA_DIR
from services.spec import ServiceSpec


@dataclass(frozen=True)
class PlatformInputs:
    stack: str
    config: StackConfig
    catalog: list[ServiceSpec]
    sizing: dict[str, ServiceSizing]

    @classmethod
    def resolve(cls, stack: str, config: StackConfig, catalog: list[ServiceSpec]) -> PlatformInputs:
        from components.config import ConfigError

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


@dataclass
class Platform:
    """Handles to the composed components, for exports and for tests."""

    key: PlatformKey
    network: Network
    cluster: Cluster
    edge: Edge
    events: EventBus
    notification: NotificationFunction | None
    outputs: dict[str, Any] = field(default_factory=dict)
    services: dict[str, FargateMicroservice] = field(default_factory=dict)
    """One FargateMicroservice per `kind == "fargate"` spec, by service name."""
    mesh: ServiceMesh | None = None
    """The mTLS mesh: Cloud Map namespace, mesh CA, one identity and registry per Fargate service."""
    observability: Observability | None = None
    """The alarm topic every alarm notifies, the DLQ/Lambda alarms and the environment's dashboard."""

    def exports(self) -> dict[str, Any]:
        return {
            "environment": self.outputs["environment"],
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
            **(
                {"notificationDeployment": self.notification.deployment}
                if self.notification is not None and self.notification.deployment is not None
                else {}
            ),
            **(self.mesh.exports() if self.mesh is not None else {}),
            **(self.observability.exports() if self.observability is not None else {}),
        }


def build_platform(inputs: PlatformInputs) -> Platform:
    config = inputs.config
    env = config.environment
    tags = config.base_tags()
    identity = aws.get_caller_identity()
    partition = aws.get_partition().partition
    zones = aws.get_availability_zones(state="available").names[: config.network.az_count]
    prefix = f"ms-{env}"

    key = PlatformKey(
        prefix,
        PlatformKeyArgs(account_id=identity.account_id, region=config.region, partition=partition, tags=tags),
    )
    network = Network(
        prefix,
        NetworkArgs(
            config=config.network,
            region=config.region,
            availability_zones=list(zones),
            log_retention_days=config.observability.log_retention_days,
            kms_key_arn=key.key_arn,
            tags=tags,
        ),
    )
    cluster = Cluster(
        prefix,
        ClusterArgs(
            config=config.compute,
            kms_key_arn=key.key_arn,
            log_retention_days=config.observability.log_retention_days,
            tags=tags,
        ),
    )
    # Before the services: each sends its alarms to the alarm topic. The DLQ and Lambda alarms and the
    # dashboard follow once the bus, the function and the services exist (`_watch`).
    observability = Observability(
        prefix,
        ObservabilityArgs(
            config=config.observability,
            kms_key_arn=key.key_arn,
            account_id=identity.account_id,
            region=config.region,
            partition=partition,
            tags=tags,
            container_insights=config.compute.container_insights,
        ),
    )
    # The mesh before the services: each gets `mesh.attachment_for(name)` (its Envoy sidecar, identity
    # secret, Cloud Map registry); see components/mesh.py for the calls that follow the services.
    mesh = ServiceMesh(
        prefix,
        ServiceMeshArgs(
            config=config.mesh,
            environment=env,
            catalog=inputs.catalog,
            vpc_id=network.vpc_id,
            kms_key_arn=key.key_arn,
            region=config.region,
            partition=partition,
            tags=tags,
            protect=config.data.protect_resources,
        ),
    )
    # Before the services: they receive the bus ARN and their queue ARNs (see `components/events.py`
    # for why the bus policy is declared after them, by `events.allow_publishers`).
    events, notification = _build_events(inputs, identity.account_id, partition, key.key_arn, prefix)
    edge = Edge(
        prefix,
        EdgeArgs(
            config=config.edge,
            is_production=config.is_production,
            region=config.region,
            account_id=identity.account_id,
            partition=partition,
            vpc_id=network.vpc_id,
            vpc_cidr=network.cidr_block,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            public_services=[s for s in inputs.catalog if s.kind == "fargate" and s.is_public],
            # Load balancers reach public services only through their Envoy sidecar's TLS edge port.
            target_ports=[EDGE_PORT],
            kms_key_arn=key.key_arn,
            log_retention_days=config.observability.log_retention_days,
            tags=tags,
        ),
    )
    # Reference images (specs with `build`, unless the stack sets `image`): one ECR repository each,
    # built and pushed by `pulumi up`; the task definitions pin their digests.
    images = {
        spec.name: ServiceImage(
            f"{prefix}-{spec.name}",
            ServiceImageArgs(
                service=spec.name,
                environment=env,
                build=spec.build,
                kms_key_arn=key.key_arn,
                cpu_architecture=config.compute.cpu_architecture,
                protect=config.data.protect_resources,
                tags=tags,
            ),
        )
        for spec in inputs.catalog
        if spec.kind == "fargate" and spec.build is not None and not inputs.sizing[spec.name].image
    }
    services = {
        spec.name: FargateMicroservice(
            f"{prefix}-{spec.name}",
            FargateMicroserviceArgs(
                spec=spec,
                sizing=inputs.sizing[spec.name],
                environment=env,
                compute=config.compute,
                data=config.data,
                observability=config.observability,
                vpc_id=network.vpc_id,
                private_subnet_ids=network.private_subnet_ids,
                isolated_subnet_ids=network.isolated_subnet_ids,
                cluster_arn=cluster.cluster_arn,
                cluster_name=cluster.cluster_name,
                kms_key_arn=key.key_arn,
                account_id=identity.account_id,
                region=config.region,
                partition=partition,
                tags=tags,
                exec_log_group_name=cluster.exec_log_group_name if config.compute.enable_execute_command else None,
                alarm_topic_arn=observability.alarm_topic_arn,
                alb=AlbAttachment.from_edge(edge.attachment, **mesh.alb_target(spec.name)) if spec.is_public else None,
                mesh=mesh.attachment_for(spec.name),
                publish_bus_arn=events.bus_arn if spec.publishes else None,
                consume_queue_arns=[events.queue_arn_for(spec.name)] if spec.name in events.queue_consumers else [],
                deployment=config.deployment,
                vpc_cidr=config.network.cidr,
                image=images[spec.name].image_ref if spec.name in images else None,
                image_repository_arn=images[spec.name].repository_arn if spec.name in images else None,
            ),
        )
        for spec in inputs.catalog
        if spec.kind == "fargate"
    }
    events.allow_publishers({name: s.task_role_arn for name, s in services.items() if s.spec.publishes})
    # Now that every service has its roles and security group: each mesh identity becomes readable by
    # its own execution role only, and security groups open the mesh port along the call graph only.
    for name, service in services.items():
        mesh.restrict_identity(name, service.execution_role_arn)
    mesh.connect_security_groups({name: service.security_group_id for name, service in services.items()})
    _watch(observability, cluster, events, notification, services)
    return Platform(
        key=key,
        network=network,
        cluster=cluster,
        edge=edge,
        events=events,
        notification=notification,
        outputs={"environment": pulumi.Output.from_input(env)},
        services=services,
        mesh=mesh,
        observability=observability,
    )


def _watch(
    observability: Observability,
    cluster: Cluster,
    events: EventBus,
    notification: NotificationFunction | None,
    services: dict[str, FargateMicroservice],
) -> None:
    """What sits between the services: every dead-letter queue (the bus's and the function's failure
    queue), the notification function, then the dashboard over all of it and the services."""
    queues = dict(events.dead_letter_queue_names)
    if notification is not None:
        queues["notification-failures"] = notification.failure_queue_name
    observability.watch_queues(queues)
    if notification is not None:
        observability.watch_function("notification", notification.function_name)
    observability.publish_dashboard(
        cluster_name=cluster.cluster_name,
        services={name: ServiceMetrics.of(service) for name, service in services.items()},
        bus_name=events.bus_name,
        rule_names=[rule.name for rule in events.rules.values()],
    )


def _build_events(
    inputs: PlatformInputs, account_id: str, partition: str, key_arn: pulumi.Output[str], prefix: str
) -> tuple[EventBus, NotificationFunction | None]:
    """The event bus (declared before the services, which receive its ARNs) and the notification
    Lambda, wired both ways: it consumes its queue and publishes to the bus's topic; the bus's direct
    rules invoke it, and only its role may publish to the topic."""
    config = inputs.config
    spec = next((s for s in inputs.catalog if s.name == "notification" and s.kind == "lambda"), None)
    settings = NotificationSettings.for_environment(config.environment)
    events = EventBus(
        prefix,
        EventBusArgs(
            config=config.events,
            catalog=inputs.catalog,
            kms_key_arn=key_arn,
            account_id=account_id,
            region=config.region,
            partition=partition,
            tags=config.base_tags(),
            visibility_timeouts={"notification": settings.queue_visibility_timeout_seconds} if spec else {},
            schema_dir=SCHEMA_DIR,
        ),
    )
    if spec is None:
        return events, None
    notification = NotificationFunction(
        f"{prefix}-notification",
        NotificationFunctionArgs(
            spec=spec,
            settings=settings,
            queue_arn=events.queue_arn_for(spec.name) if spec.name in events.queue_consumers else None,
            topic_arn=events.topic_arn,
            kms_key_arn=key_arn,
            log_retention_days=config.observability.log_retention_days,
            tracing=config.observability.tracing,
            tags=config.base_tags(),
            traffic_shift=config.deployment.effective_lambda_shift(config.environment),
        ),
    )
    if any(s.delivery == "direct" for s in spec.subscribes):
        events.route_to_function(
            spec.name,
            function_arn=notification.invoke_arn,
            function_name=notification.function_name,
            qualifier=notification.invoke_qualifier,
        )
    events.allow_topic_publishers([notification.role_arn])
    return events, notification
