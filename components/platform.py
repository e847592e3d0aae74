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
from components.kms import PlatformKey, PlatformKeyArgs
from components.network import Network, NetworkArgs
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
        sizing = {
            spec.name: resolve_sizing(
                stack, config, spec.name, {**spec.sizing, **({"image": spec.image} if spec.image else {})}
            )
            for spec in catalog
            if spec.kind == "fargate"
        }
        return cls(stack=stack, config=config, catalog=catalog, sizing=sizing)


@dataclass
class Platform:
    """Handles to the composed components, for exports and for tests."""

    key: PlatformKey
    network: Network
    cluster: Cluster
    outputs: dict[str, Any] = field(default_factory=dict)

    def exports(self) -> dict[str, Any]:
        return {
            "environment": self.outputs["environment"],
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
            "clusterName": self.cluster.cluster_name,
            "kmsKeyArn": self.key.key_arn,
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
    return Platform(key=key, network=network, cluster=cluster, outputs={"environment": pulumi.Output.from_input(env)})
