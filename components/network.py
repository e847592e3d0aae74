"""Network: the VPC every environment runs in.

Three subnet tiers per availability zone: public (load balancer, NAT), private (Fargate tasks, Lambda,
with a NAT route out) and isolated (databases and caches: no route to the internet at all). NAT
follows the environment's cost/resilience choice. Gateway endpoints for S3 and DynamoDB keep that
traffic off the NAT; flow logs of all traffic go to an encrypted CloudWatch log group.

Built on `awsx.ec2.Vpc` (AWS's recommended subnet layout, route tables and NAT wiring). It is a
remote component: under the offline preview its children are not visible, only its inputs and outputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from components.context import PlatformContext
from model.config import NetworkConfig

# awsx splits the VPC CIDR by these masks relative to a /16; smaller VPCs get proportionally smaller
# subnets (see _subnet_masks).
_TIER_MASK_OFFSET = {"public": 8, "private": 3, "isolated": 5}


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    availability_zones: list[str]
    """AZ names to use, already cut to `config.az_count` by the caller."""
    log_retention_days: int


def _subnet_masks(cidr: str) -> dict[str, int]:
    prefix = int(cidr.split("/")[1])
    # /16 -> public /24, private /19, isolated /21; capped at /28, AWS's smallest subnet.
    return {tier: min(prefix + offset, 28) for tier, offset in _TIER_MASK_OFFSET.items()}


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[Sequence[str]]
    private_subnet_ids: pulumi.Output[Sequence[str]]
    isolated_subnet_ids: pulumi.Output[Sequence[str]]
    cidr_block: str

    def __init__(
        self, name: str, args: NetworkArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("microservices:network:Network", name, None, opts)
        self._context = context
        child = pulumi.ResourceOptions(parent=self)
        masks = _subnet_masks(args.config.cidr)
        self.cidr_block = args.config.cidr
        nat_strategy = (
            awsx.ec2.NatGatewayStrategy.SINGLE
            if args.config.nat_gateways == "single"
            else awsx.ec2.NatGatewayStrategy.ONE_PER_AZ
        )
        self._vpc = awsx.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.config.cidr,
            availability_zone_names=args.availability_zones,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=nat_strategy),
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=masks["public"], name="public"),
                awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=masks["private"], name="private"),
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.ISOLATED, cidr_mask=masks["isolated"], name="isolated"
                ),
            ],
            vpc_endpoint_specs=[
                awsx.ec2.VpcEndpointSpecArgs(
                    service_name=f"com.amazonaws.{context.region}.s3", vpc_endpoint_type="Gateway"
                ),
                awsx.ec2.VpcEndpointSpecArgs(
                    service_name=f"com.amazonaws.{context.region}.dynamodb", vpc_endpoint_type="Gateway"
                ),
            ],
            tags=context.with_tags(Name=f"{name}-vpc"),
            opts=child,
        )
        self.vpc_id = self._vpc.vpc_id
        self.public_subnet_ids = self._vpc.public_subnet_ids
        self.private_subnet_ids = self._vpc.private_subnet_ids
        self.isolated_subnet_ids = self._vpc.isolated_subnet_ids
        self._flow_logs(name, args)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "isolatedSubnetIds": self.isolated_subnet_ids,
            }
        )

    def _flow_logs(self, name: str, args: NetworkArgs) -> None:
        ctx = self._context
        child = pulumi.ResourceOptions(parent=self)
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.config.flow_log_retention_days,
            kms_key_id=ctx.key_arn,
            tags=dict(ctx.tags),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=ctx.trust_policy("vpc-flow-logs.amazonaws.com"),
            tags=dict(ctx.tags),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-write",
            role=role.id,
            policy=self.flow_log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                    "logs:DescribeLogStreams",
                                ],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=dict(ctx.tags),
            opts=child,
        )
