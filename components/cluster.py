"""ECS cluster with Container Insights and Fargate / Fargate Spot capacity providers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from model.config import ComputeConfig


@dataclass(frozen=True)
class CapacityShare:
    """One entry of an ECS capacity provider strategy."""

    provider: Literal["FARGATE", "FARGATE_SPOT"]
    weight: int
    base: int = 0


def capacity_strategy(config: ComputeConfig) -> list[CapacityShare]:
    """The capacity provider strategy the environment asks for: the cluster's default and each ECS
    service's own (the composition computes it once and passes it to both)."""
    if config.capacity == "spot":
        return [CapacityShare("FARGATE_SPOT", 1)]
    if config.capacity == "onDemand":
        return [CapacityShare("FARGATE", 1)]
    return [
        CapacityShare("FARGATE", config.on_demand_weight, config.on_demand_base),
        CapacityShare("FARGATE_SPOT", config.spot_weight),
    ]


@dataclass(frozen=True)
class ClusterArgs:
    capacity: Sequence[CapacityShare]
    """The default capacity provider strategy (`capacity_strategy(config.compute)`)."""
    container_insights: bool
    log_retention_days: int
    """Of the ECS Exec session log group."""


class Cluster(pulumi.ComponentResource):
    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        """`context.key_arn` encrypts ECS Exec sessions and their log group."""
        super().__init__("microservices:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        exec_logs = aws.cloudwatch.LogGroup(
            f"{name}-exec-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=context.key_arn,
            tags=dict(context.tags),
            opts=child,
        )
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[
                aws.ecs.ClusterSettingArgs(
                    name="containerInsights", value="enhanced" if args.container_insights else "disabled"
                )
            ],
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=context.key_arn,
                    logging="OVERRIDE",
                    log_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationLogConfigurationArgs(
                        cloud_watch_encryption_enabled=True,
                        cloud_watch_log_group_name=exec_logs.name,
                    ),
                )
            ),
            tags=dict(context.tags),
            opts=child,
        )
        aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=share.provider, weight=share.weight, base=share.base
                )
                for share in args.capacity
            ],
            opts=child,
        )
        self.cluster_arn = cluster.arn
        self.cluster_name = cluster.name
        self.exec_log_group_name = exec_logs.name
        self.register_outputs({"clusterArn": self.cluster_arn, "clusterName": self.cluster_name})
