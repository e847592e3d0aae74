"""Data stores owned by exactly one service (seed: database per service).

Each store is a ComponentResource declared as a CHILD of its owning FargateMicroservice, so ownership
is visible in every URN and the policy pack can prove no other service reaches it. Every store:

* lives in the ISOLATED subnets (no route to the internet) behind its own security group, which
  admits the store's port only from the owner's security group (DynamoDB has no network surface: it
  is reached through the VPC gateway endpoint and guarded by IAM alone);
* is encrypted at rest with the platform KMS key and in transit (RDS `rds.force_ssl=1`, Valkey TLS
  `required`, DynamoDB is HTTPS-only);
* has backups (RDS automated backups, DynamoDB PITR, Valkey snapshots), and in production is
  Multi-AZ, deletion-protected, and `protect`/`retainOnDelete` in Pulumi when the config asks;
* tells its owner, through a `StoreBinding`, exactly what the owner's task needs: plain environment
  values (endpoints, names), secrets by Secrets Manager reference, the IAM statements on its own exact
  ARNs, and the port to open in the owner's egress. Nothing else ever learns about the store.

Authentication choices:

* PostgreSQL: password authentication with the master credentials RDS generates and keeps in Secrets
  Manager (`manage_master_user_password`, encrypted with the platform key, rotated by RDS). The app
  gets them through ECS `secrets` (username/password JSON keys), never as plain values, so the task
  role needs no `rds-db:connect`. IAM database authentication is still enabled on the instance so
  operators and migration jobs can use short-lived tokens without sharing the password.
* Valkey: IAM authentication. An ElastiCache user with `authentication_mode = iam` in a user group
  attached to the replication group; the task signs a short-lived token with its role, which holds
  `elasticache:Connect` on exactly this replication group and user. The app has no password or AUTH
  token to leak or rotate. Every user group must also hold a user named `default`; ours is switched off
  (`off -@all`) with a random password nobody receives. IAM auth needs TLS, which is `required` here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.context import PlatformContext
from components.iam import Statement, allow, kms_via, sid
from model.aws_limits import ec2_description
from model.config import DataConfig
from model.spec import DynamoStore, PostgresStore, RedisStore

POSTGRES_PORT = 5432
VALKEY_PORT = 6379
VALKEY_ENGINE_VERSION = "8.0"
RDS_CA = "rds-ca-rsa2048-g1"
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7
"""The free tier of Performance Insights retention."""
BACKUP_WINDOW = "03:00-04:00"
MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"
"""UTC; the backup window must not overlap the maintenance window."""

DYNAMODB_ITEM_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)
"""Item-level data access on the owner's table (no table management: no Create/Delete/UpdateTable)."""

VALKEY_ACCESS_STRING = "on ~* +@all -@dangerous"
"""The app user may use every key and every command except the dangerous ones (FLUSHALL, KEYS, CONFIG...)."""
VALKEY_DISABLED_ACCESS_STRING = "off -@all"
"""The required `default` user: disabled (`off`), no keys, no commands."""

_NO_PERFORMANCE_INSIGHTS = re.compile(r"^db\.t\d+g?\.(micro|small)$")
"""Burstable micro/small classes do not support Performance Insights (AWS rejects the instance)."""


def supports_performance_insights(instance_class: str) -> bool:
    return _NO_PERFORMANCE_INSIGHTS.match(instance_class) is None


def env_prefix(store_name: str) -> str:
    """`users-db` -> `USERS_DB`: the prefix of every environment variable a store gives its owner."""
    return store_name.upper().replace("-", "_")


@dataclass(frozen=True)
class ContainerSecret:
    """One ECS container `secrets` entry: an environment variable read from Secrets Manager at start."""

    name: str
    """Environment variable name in the container."""
    value_from: pulumi.Input[str]
    """Secret ARN, optionally with `:<json-key>:<version-stage>:<version-id>` (e.g. `<arn>:password::`)."""


@dataclass(frozen=True)
class StoreBinding:
    """What the owning service needs from one of its stores, and nothing more."""

    environment: Mapping[str, pulumi.Input[str]]
    """Plain, non-secret settings (endpoints, names, ports)."""
    secrets: Sequence[ContainerSecret] = ()
    secret_arns: Sequence[pulumi.Input[str]] = ()
    """Secrets the owner's EXECUTION role must read to inject `secrets`."""
    task_statements: Sequence[Statement] = ()
    """IAM statements for the owner's TASK role, on this store's exact ARNs."""
    security_group_id: pulumi.Input[str] | None = None
    """The store's security group (None: no network surface, e.g. DynamoDB)."""
    port: int | None = None


@dataclass(frozen=True)
class StoreNetwork:
    """Where a store with a network surface (PostgreSQL, Valkey) lives and who may reach it."""

    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    """ISOLATED subnets (no route to the internet)."""
    owner_security_group_id: pulumi.Input[str]
    """The only security group admitted to the store's port."""


@dataclass(frozen=True)
class DataStoreArgs:
    """What one store needs beyond the shared facts (environment, region, tags and the platform key
    come from the `PlatformContext` every store is given after its args)."""

    owner: str
    """Name of the owning service (its spec name), used for tags and descriptions."""
    data: DataConfig
    """The stack's `data` section: sizes, Multi-AZ, backups, protection, engine version (all of it is theirs)."""
    log_retention_days: int
    network: StoreNetwork | None = None
    """Required by the stores in the VPC (PostgreSQL, Valkey); DynamoDB has no network surface, so a
    Lambda service (outside the VPC, DynamoDB only: `services._check_kind_fields`) passes none."""

    def in_vpc(self, what: str) -> StoreNetwork:
        """The network of a store that lives in the VPC; a store declared without one is a program error."""
        if self.network is None:
            raise ValueError(
                f"{what} store of {self.owner!r}: DataStoreArgs.network is required (VPC, subnets, owner SG)"
            )
        return self.network


def keeps_final_snapshot(data: DataConfig, context: PlatformContext) -> bool:
    """Deletion-protected and production stores take a final snapshot before they are deleted."""
    return data.deletion_protection or context.environment == "prod"


def _store_options(parent: pulumi.Resource, data: DataConfig, **extra: Any) -> pulumi.ResourceOptions:
    """Options for the resource that holds the data: `protect` and `retainOnDelete` when configured."""
    protect = data.protect_resources
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **extra)


class _StoreComponent(pulumi.ComponentResource):
    binding: StoreBinding
    arns: list[pulumi.Output[str]]
    """The ARNs that identify the stored data (for ownership checks and grants)."""

    def _security_group(
        self, name: str, args: DataStoreArgs, tags: Mapping[str, str], port: int, what: str
    ) -> aws.ec2.SecurityGroup:
        """A security group that admits `port` from the owner's security group only, and no egress."""
        network = args.in_vpc(what)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=network.vpc_id,
            description=ec2_description(f"{what} owned by {args.owner}: port {port} from the owner only"),
            tags={**tags, "Name": f"{name}-sg"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-owner",
            security_group_id=group.id,
            referenced_security_group_id=network.owner_security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=ec2_description(f"{what} clients: the {args.owner} service only"),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return group


class PostgresDatabase(_StoreComponent):
    """RDS PostgreSQL in the isolated subnets, TLS-only, KMS-encrypted, credentials in Secrets Manager."""

    def __init__(
        self,
        name: str,
        store: PostgresStore,
        args: DataStoreArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("microservices:data:PostgresDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = context.with_tags(Service=args.owner, DataStore=store.name)
        data = args.data
        group = self._security_group(name, args, tags, POSTGRES_PORT, "PostgreSQL")
        network = args.in_vpc("PostgreSQL")
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=network.subnet_ids,
            description=f"{store.name}: isolated subnets",
            tags=tags,
            opts=child,
        )
        major = data.postgres_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{major}",
            description=f"{store.name}: TLS required",
            parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")],
            tags=tags,
            opts=child,
        )
        # The instance identifier is fixed (not auto-named) so that the log group RDS exports to can be
        # declared up front with our retention and KMS key, instead of RDS creating it unencrypted and
        # kept forever.
        identifier = name
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/rds/instance/{identifier}/postgresql",
            retention_in_days=args.log_retention_days,
            kms_key_id=context.key_arn,
            tags=tags,
            opts=child,
        )
        insights = data.performance_insights and supports_performance_insights(data.db_instance_class)
        keep_snapshot = keeps_final_snapshot(data, context)
        self.instance = aws.rds.Instance(
            name,
            identifier=identifier,
            engine="postgres",
            engine_version=data.postgres_version,
            instance_class=data.db_instance_class,
            allocated_storage=data.db_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=context.key_arn,
            db_name=store.database_name,
            username=f"{store.database_name}_admin"[:63],
            manage_master_user_password=True,
            master_user_secret_kms_key_id=context.key_arn,
            iam_database_authentication_enabled=True,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            parameter_group_name=parameters.name,
            ca_cert_identifier=RDS_CA,
            publicly_accessible=False,
            multi_az=data.multi_az,
            deletion_protection=data.deletion_protection,
            backup_retention_period=data.backup_retention_days,
            backup_window=BACKUP_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not keep_snapshot,
            skip_final_snapshot=not keep_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if keep_snapshot else None,
            performance_insights_enabled=insights,
            performance_insights_kms_key_id=context.key_arn if insights else None,
            performance_insights_retention_period=PERFORMANCE_INSIGHTS_RETENTION_DAYS if insights else None,
            auto_minor_version_upgrade=True,
            enabled_cloudwatch_logs_exports=["postgresql"],
            tags=tags,
            opts=_store_options(self, data, depends_on=[logs]),
        )
        self.security_group_id: pulumi.Output[str] = group.id
        self.address: pulumi.Output[str] = self.instance.address
        self.master_secret_arn: pulumi.Output[str] = self.instance.master_user_secrets.apply(_first_secret_arn)
        self.arns = [self.instance.arn]
        prefix = env_prefix(store.name)
        self.binding = StoreBinding(
            environment={
                f"{prefix}_HOST": self.address,
                f"{prefix}_PORT": str(POSTGRES_PORT),
                f"{prefix}_NAME": store.database_name,
                f"{prefix}_SSLMODE": "require",
            },
            secrets=(
                ContainerSecret(f"{prefix}_USERNAME", pulumi.Output.concat(self.master_secret_arn, ":username::")),
                ContainerSecret(f"{prefix}_PASSWORD", pulumi.Output.concat(self.master_secret_arn, ":password::")),
            ),
            secret_arns=(self.master_secret_arn,),
            security_group_id=group.id,
            port=POSTGRES_PORT,
        )
        self.register_outputs(
            {
                "arn": self.instance.arn,
                "address": self.address,
                "masterSecretArn": self.master_secret_arn,
                "securityGroupId": self.security_group_id,
            }
        )


def _first_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret] | None) -> str:
    """`masterUserSecrets[0].secretArn`: the secret RDS manages for the master user."""
    if not secrets:
        return ""
    return str(secrets[0].secret_arn)


class DynamoTable(_StoreComponent):
    """On-demand DynamoDB table, KMS-encrypted with the platform key, point-in-time recovery on."""

    def __init__(
        self,
        name: str,
        store: DynamoStore,
        args: DataStoreArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("microservices:data:DynamoTable", name, None, opts)
        tags = context.with_tags(Service=args.owner, DataStore=store.name)
        attributes = [aws.dynamodb.TableAttributeArgs(name=store.hash_key, type="S")]
        if store.range_key:
            attributes.append(aws.dynamodb.TableAttributeArgs(name=store.range_key, type=store.range_key_type))
        self.table = aws.dynamodb.Table(
            name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=store.hash_key,
            range_key=store.range_key,
            attributes=attributes,
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=context.key_arn
            ),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=args.data.deletion_protection,
            ttl=(
                aws.dynamodb.TableTtlArgs(attribute_name=store.ttl_attribute, enabled=True)
                if store.ttl_attribute
                else None
            ),
            # An outbox / event store streams its new items to an EventBridge Pipe (components/outbox.py).
            stream_enabled=store.stream or None,
            stream_view_type="NEW_IMAGE" if store.stream else None,
            tags=tags,
            opts=_store_options(self, args.data),
        )
        self.table_name: pulumi.Output[str] = self.table.name
        self.stream_arn: pulumi.Output[str] | None = self.table.stream_arn if store.stream else None
        self.arns = [self.table.arn]
        # No secondary indexes are declared, so the table ARN is the only resource (no `/index/*`).
        self.binding = StoreBinding(
            environment={f"{env_prefix(store.name)}_NAME": self.table.name},
            task_statements=(
                allow(sid("Own", store.name, "Items"), DYNAMODB_ITEM_ACTIONS, [self.table.arn]),
                # Reads and writes of a table encrypted with a customer managed key use that key on the
                # caller's behalf: only through DynamoDB (kms:ViaService), never directly.
                allow(
                    sid("Own", store.name, "Key"),
                    ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                    [context.key_arn],
                    kms_via(context.region, "dynamodb"),
                ),
            ),
        )
        self.register_outputs({"arn": self.table.arn, "tableName": self.table_name})


class RedisCache(_StoreComponent):
    """ElastiCache for Valkey replication group: TLS required, KMS at rest, IAM-authenticated user."""

    def __init__(
        self,
        name: str,
        store: RedisStore,
        args: DataStoreArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("microservices:data:RedisCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = context.with_tags(Service=args.owner, DataStore=store.name)
        data = args.data
        group = self._security_group(name, args, tags, VALKEY_PORT, "Valkey")
        network = args.in_vpc("Valkey")
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=network.subnet_ids,
            description=f"{store.name}: isolated subnets",
            tags=tags,
            opts=child,
        )
        # ElastiCache ids are account-wide and short (replication group: 40 characters), so they are
        # explicit `<env>-<store>` (store names are unique across the catalogue) rather than auto-named.
        group_id = f"{context.environment}-{store.name}"
        # IAM authentication requires user_id == user_name.
        user_id = f"{group_id}-app"
        user = aws.elasticache.User(
            f"{name}-user",
            user_id=user_id,
            user_name=user_id,
            engine="valkey",
            access_string=VALKEY_ACCESS_STRING,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type="iam"),
            tags=tags,
            opts=child,
        )
        # A user group must contain a user named `default` (CloudFormation AWS::ElastiCache::UserGroup
        # UserIds: "A user named default must be included"; RBAC guide: a Valkey group may only hold
        # users with password or IAM authentication, so the account's no-password `default` user is not
        # allowed). This one is switched off with no command rights; its password is random and never
        # handed to anyone.
        default_password = random.RandomPassword(f"{name}-default-password", length=32, special=False, opts=child)
        default_user = aws.elasticache.User(
            f"{name}-default-user",
            user_id=f"{group_id}-default",
            user_name="default",
            engine="valkey",
            access_string=VALKEY_DISABLED_ACCESS_STRING,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(
                type="password", passwords=[default_password.result]
            ),
            tags=tags,
            opts=child,
        )
        users = aws.elasticache.UserGroup(
            f"{name}-users",
            user_group_id=group_id,
            engine="valkey",
            user_ids=[default_user.user_id, user.user_id],
            tags=tags,
            opts=child,
        )
        multi_az = data.multi_az
        keep_snapshot = keeps_final_snapshot(data, context)
        self.replication_group = aws.elasticache.ReplicationGroup(
            name,
            replication_group_id=group_id,
            description=f"{store.name}: cache owned by {args.owner}",
            engine="valkey",
            engine_version=VALKEY_ENGINE_VERSION,
            node_type=data.cache_node_type,
            port=VALKEY_PORT,
            num_cache_clusters=2 if multi_az else 1,
            automatic_failover_enabled=multi_az,
            multi_az_enabled=multi_az,
            subnet_group_name=subnets.name,
            security_group_ids=[group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=context.key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            user_group_ids=[users.user_group_id],
            snapshot_retention_limit=min(data.backup_retention_days, 35),
            snapshot_window=BACKUP_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            final_snapshot_identifier=f"{group_id}-final" if keep_snapshot else None,
            auto_minor_version_upgrade=True,
            tags=tags,
            opts=_store_options(self, data),
        )
        self.security_group_id: pulumi.Output[str] = group.id
        self.user_arn: pulumi.Output[str] = user.arn
        self.arns = [self.replication_group.arn, user.arn]
        prefix = env_prefix(store.name)
        self.binding = StoreBinding(
            environment={
                f"{prefix}_HOST": self.replication_group.primary_endpoint_address,
                f"{prefix}_PORT": str(VALKEY_PORT),
                f"{prefix}_USER": user.user_name,
                f"{prefix}_REPLICATION_GROUP": self.replication_group.replication_group_id,
                f"{prefix}_AUTH_MODE": "iam",
                f"{prefix}_TLS": "true",
            },
            task_statements=(
                # IAM auth: the token is signed for this replication group AND this user; both are named.
                allow(
                    sid("Own", store.name, "Connect"), ["elasticache:Connect"], [self.replication_group.arn, user.arn]
                ),
            ),
            security_group_id=group.id,
            port=VALKEY_PORT,
        )
        self.register_outputs(
            {
                "arn": self.replication_group.arn,
                "primaryEndpoint": self.replication_group.primary_endpoint_address,
                "userArn": self.user_arn,
                "securityGroupId": self.security_group_id,
            }
        )


DataStore = PostgresDatabase | DynamoTable | RedisCache


def create_store(
    name: str,
    store: PostgresStore | DynamoStore | RedisStore,
    args: DataStoreArgs,
    context: PlatformContext,
    opts: pulumi.ResourceOptions | None = None,
) -> DataStore:
    """The component for one store spec."""
    if isinstance(store, PostgresStore):
        return PostgresDatabase(name, store, args, context, opts)
    if isinstance(store, DynamoStore):
        return DynamoTable(name, store, args, context, opts)
    return RedisCache(name, store, args, context, opts)
