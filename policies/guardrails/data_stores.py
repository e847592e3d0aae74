"""Data stores: RDS, DynamoDB, ElastiCache (encryption, exposure, production resilience)."""

from __future__ import annotations

from collections.abc import Iterator

from .core import (
    CACHE_CLUSTER,
    CACHE_REPLICATION_GROUP,
    DYNAMODB_TABLE,
    PRODUCTION_ENVIRONMENTS_SCHEMA,
    RDS_CLUSTER,
    RDS_INSTANCE,
    Config,
    EnforcementLevel,
    Resource,
    ResourceRule,
    Severity,
    is_production,
    mapping,
    number,
    of_types,
    production_label,
    truthy,
)

RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_TYPES = (RDS_INSTANCE, RDS_CLUSTER)
_KIND = {RDS_INSTANCE: "RDS instance", RDS_CLUSTER: "RDS cluster", RDS_CLUSTER_INSTANCE: "RDS cluster instance"}


def _rds(resource: Resource) -> str:
    return f"{_KIND[resource.resource_type]} '{resource.name}'"


# --- RDS ------------------------------------------------------------------------------------------
def check_rds_storage_encrypted(resource: Resource, _config: Config) -> Iterator[str]:
    if resource.props.get("replicateSourceDb"):
        return  # a read replica inherits the source's encryption
    if not truthy(resource.props.get("storageEncrypted")):
        yield f"{_rds(resource)} does not encrypt its storage (storageEncrypted: true)."


RDS_STORAGE_ENCRYPTED = ResourceRule(
    name="rds-storage-encrypted",
    description="RDS instances and clusters encrypt their storage at rest.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set storageEncrypted: true and kmsKeyId to the environment's KMS key (requires a new database).",
    applies=of_types(*RDS_TYPES),
    check=check_rds_storage_encrypted,
)


def check_rds_public_access(resource: Resource, _config: Config) -> Iterator[str]:
    if truthy(resource.props.get("publiclyAccessible")):
        yield f"{_rds(resource)} is publicly accessible (publiclyAccessible must be false)."


RDS_NO_PUBLIC_ACCESS = ResourceRule(
    name="rds-no-public-access",
    description="RDS databases are not publicly accessible.",
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set publiclyAccessible: false and place the database in the isolated subnets' subnet group.",
    applies=of_types(*RDS_TYPES, RDS_CLUSTER_INSTANCE),
    check=check_rds_public_access,
)


def check_rds_managed_password(resource: Resource, _config: Config) -> Iterator[str]:
    props = resource.props
    if props.get("replicateSourceDb") or props.get("snapshotIdentifier"):
        return
    if props.get("password") or props.get("masterPassword"):
        yield f"{_rds(resource)} sets its master password in the program; let RDS manage it in Secrets Manager."
    if not truthy(props.get("manageMasterUserPassword")):
        yield (
            f"{_rds(resource)} does not keep its master credentials in Secrets Manager "
            "(manageMasterUserPassword: true)."
        )


RDS_MANAGED_MASTER_PASSWORD = ResourceRule(
    name="rds-managed-master-password",
    description="RDS master credentials are generated and kept in Secrets Manager by RDS, never set in code.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Remove password/masterPassword and set manageMasterUserPassword: true (optionally "
        "masterUserSecretKmsKeyId); the owning service reads the secret ARN from masterUserSecrets."
    ),
    applies=of_types(*RDS_TYPES),
    check=check_rds_managed_password,
)


def check_rds_resilience(resource: Resource, config: Config) -> Iterator[str]:
    if not is_production(resource, config):
        return
    props, where = resource.props, f"in production ({production_label(resource)})"
    if resource.resource_type == RDS_INSTANCE and not truthy(props.get("multiAz")):
        yield f"{_rds(resource)} is not Multi-AZ {where} (multiAz: true)."
    if not truthy(props.get("deletionProtection")):
        yield f"{_rds(resource)} has no deletion protection {where} (deletionProtection: true)."
    minimum = number(config.get("minimumBackupRetentionDays")) or 7
    retention = number(props.get("backupRetentionPeriod"))
    if retention is None:
        yield f"{_rds(resource)} does not set backupRetentionPeriod {where}; it must be at least {minimum:g} days."
    elif retention < minimum:
        yield (
            f"{_rds(resource)} keeps automated backups {retention:g} days {where}; "
            f"backupRetentionPeriod must be at least {minimum:g}."
        )


RDS_PRODUCTION_RESILIENCE = ResourceRule(
    name="rds-production-resilience",
    description=(
        "In production, RDS instances are Multi-AZ, and RDS instances and clusters have deletion protection and "
        "automated backups kept at least 7 days."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="In production set multiAz: true, deletionProtection: true and backupRetentionPeriod >= 7.",
    config_schema={
        "productionEnvironments": PRODUCTION_ENVIRONMENTS_SCHEMA,
        "minimumBackupRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "maximum": 35,
            "default": 7,
            "description": "Minimum backupRetentionPeriod in production.",
        },
    },
    applies=of_types(*RDS_TYPES),
    check=check_rds_resilience,
)


# --- DynamoDB -------------------------------------------------------------------------------------
def check_dynamodb_encrypted(resource: Resource, config: Config) -> Iterator[str]:
    sse = mapping(resource.props.get("serverSideEncryption"))
    if not truthy(sse.get("enabled")):
        yield (
            f"DynamoDB table '{resource.name}' is not encrypted with KMS "
            "(serverSideEncryption.enabled: true, with the environment's key as kmsKeyArn)."
        )
    elif config.get("requireCustomerManagedKey") and not sse.get("kmsKeyArn"):
        yield f"DynamoDB table '{resource.name}' uses the AWS managed key; set serverSideEncryption.kmsKeyArn."


DYNAMODB_TABLE_ENCRYPTED = ResourceRule(
    name="dynamodb-table-encrypted",
    description="DynamoDB tables use server-side encryption with KMS.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set serverSideEncryption: {enabled: true, kmsKeyArn: <environment KMS key ARN>}.",
    config_schema={
        "requireCustomerManagedKey": {
            "type": "boolean",
            "default": False,
            "description": "Also require a customer managed key (kmsKeyArn) instead of the AWS managed key.",
        }
    },
    applies=of_types(DYNAMODB_TABLE),
    check=check_dynamodb_encrypted,
)


def check_dynamodb_backups(resource: Resource, config: Config) -> Iterator[str]:
    props = resource.props
    if not truthy(mapping(props.get("pointInTimeRecovery")).get("enabled")):
        yield f"DynamoDB table '{resource.name}' has no point-in-time recovery (pointInTimeRecovery.enabled: true)."
    if is_production(resource, config) and not truthy(props.get("deletionProtectionEnabled")):
        yield (
            f"DynamoDB table '{resource.name}' has no deletion protection in production "
            f"({production_label(resource)}; deletionProtectionEnabled: true)."
        )


DYNAMODB_PITR_AND_DELETION_PROTECTION = ResourceRule(
    name="dynamodb-pitr-and-deletion-protection",
    description="DynamoDB tables have point-in-time recovery, and deletion protection in production.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set pointInTimeRecovery: {enabled: true}; in production also deletionProtectionEnabled: true.",
    config_schema={"productionEnvironments": PRODUCTION_ENVIRONMENTS_SCHEMA},
    applies=of_types(DYNAMODB_TABLE),
    check=check_dynamodb_backups,
)


# --- ElastiCache ----------------------------------------------------------------------------------
def check_elasticache_encrypted(resource: Resource, _config: Config) -> Iterator[str]:
    props = resource.props
    if resource.resource_type == CACHE_CLUSTER:
        if props.get("replicationGroupId"):
            return  # a member of a replication group, which carries the settings
        if str(props.get("engine", "")).lower() != "memcached":
            yield (
                f"ElastiCache cluster '{resource.name}' cannot encrypt data at rest; declare an "
                "aws.elasticache.ReplicationGroup instead."
            )
        if not truthy(props.get("transitEncryptionEnabled")):
            yield f"ElastiCache cluster '{resource.name}' does not encrypt in transit (transitEncryptionEnabled: true)."
        return
    label = f"ElastiCache replication group '{resource.name}'"
    if not truthy(props.get("atRestEncryptionEnabled")):
        yield f"{label} does not encrypt data at rest (atRestEncryptionEnabled: true)."
    if not truthy(props.get("transitEncryptionEnabled")):
        yield f"{label} does not encrypt in transit (transitEncryptionEnabled: true)."


ELASTICACHE_ENCRYPTED = ResourceRule(
    name="elasticache-encrypted",
    description="ElastiCache encrypts data at rest and in transit.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Use an aws.elasticache.ReplicationGroup with atRestEncryptionEnabled: true (kmsKeyId = the environment "
        "key) and transitEncryptionEnabled: true (transitEncryptionMode: required)."
    ),
    applies=of_types(CACHE_REPLICATION_GROUP, CACHE_CLUSTER),
    check=check_elasticache_encrypted,
)


def check_elasticache_multi_az(resource: Resource, config: Config) -> Iterator[str]:
    if not is_production(resource, config):
        return
    props = resource.props
    if not (truthy(props.get("multiAzEnabled")) and truthy(props.get("automaticFailoverEnabled"))):
        yield (
            f"ElastiCache replication group '{resource.name}' is not Multi-AZ with automatic failover in "
            f"production ({production_label(resource)}; multiAzEnabled and automaticFailoverEnabled: true, "
            "at least one replica)."
        )


ELASTICACHE_MULTI_AZ_IN_PRODUCTION = ResourceRule(
    name="elasticache-multi-az-in-production",
    description="In production, ElastiCache replication groups are Multi-AZ with automatic failover.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="In production set multiAzEnabled: true, automaticFailoverEnabled: true and numCacheClusters >= 2.",
    config_schema={"productionEnvironments": PRODUCTION_ENVIRONMENTS_SCHEMA},
    applies=of_types(CACHE_REPLICATION_GROUP),
    check=check_elasticache_multi_az,
)

RULES = [
    RDS_STORAGE_ENCRYPTED,
    RDS_NO_PUBLIC_ACCESS,
    RDS_MANAGED_MASTER_PASSWORD,
    RDS_PRODUCTION_RESILIENCE,
    DYNAMODB_TABLE_ENCRYPTED,
    DYNAMODB_PITR_AND_DELETION_PROTECTION,
    ELASTICACHE_ENCRYPTED,
    ELASTICACHE_MULTI_AZ_IN_PRODUCTION,
]
