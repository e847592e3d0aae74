"""ECS cluster with Container Insights and Fargate / Fargate Spot capacity providers."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from model.config import ComputeConfig


@dataclass(frozen=True)
class ClusterArgs:
    config: ComputeConfig
    log_retention_days: int


def capacity_strategy(config: ComputeConfig) -> list[dict[str, int | str]]:
    """The capacity provider strategy the environment asks for (also used by each ECS service)."""
    if config.capacity == "spot":
        return [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    if config.capacity == "onDemand":
        return [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    return [
        {"capacityProvider": "FARGATE", "weight": config.on_demand_weight, "base": config.on_demand_base},
        {"capacityProvider": "FARGATE_SPOT", "weight": config.spot_weight, "base": 0},
    ]


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
                    name="containerInsights", value="enhanced" if args.config.container_insights else "disabled"
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
                    capacity_provider=str(s["capacityProvider"]), weight=int(s["weight"]), base=int(s["base"])
                )
                for s in capacity_strategy(args.config)
            ],
            opts=child,
        )
        self.cluster_arn = cluster.arn
        self.cluster_name = cluster.name
        self.exec_log_group_name = exec_logs.name
        self.register_outputs({"clusterArn": self.cluster_arn, "clusterName": self.cluster_name})
