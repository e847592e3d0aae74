"""Data stores: owned by exactly one service, isolated, encrypted, backed up, protected in prod."""

from __future__ import annotations

import pytest

from components.context import PlatformContext
from components.datastores import DataStoreArgs, PostgresDatabase, StoreNetwork, supports_performance_insights
from model.config import DataConfig
from model.spec import PostgresStore
from offline.plan import Plan, PlannedResource
from services import load_catalog
from tests.conftest import children_of, only, preview, run_component, single

SERVICE = "microservices:service:FargateMicroservice"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
RDS = "aws:rds/instance:Instance"
TABLE = "aws:dynamodb/table:Table"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
STORE_TYPES = {
    "postgres": "microservices:data:PostgresDatabase",
    "dynamodb": "microservices:data:DynamoTable",
    "redis": "microservices:data:RedisCache",
}
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-a444-555555555555"


def parent_of(plan: Plan, resource: PlannedResource) -> PlannedResource:
    return plan.by_urn()[resource.parent]


def owner_of(plan: Plan, resource: PlannedResource) -> PlannedResource:
    """The FargateMicroservice above a resource."""
    by_urn = plan.by_urn()
    current = by_urn[resource.parent]
    while current.type != SERVICE:
        current = by_urn[current.parent]
    return current


def isolated_subnets(plan: Plan) -> list[str]:
    return only(plan, "awsx:ec2:Vpc").outputs["isolatedSubnetIds"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_declared_store_is_a_child_of_its_owner(env: str) -> None:
    plan = preview(env).plan
    expected = {
        (f"ms-{env}-{spec.name}", STORE_TYPES[store.kind], f"ms-{env}-{spec.name}-{store.name}")
        for spec in load_catalog()
        if spec.kind == "fargate"
        for store in spec.data_stores
    }
    found = {(parent_of(plan, r).name, r.type, r.name) for r in plan.resources if r.type in STORE_TYPES.values()}
    assert found == expected
    for data_type in (RDS, TABLE, CACHE):
        for store in plan.of_type(data_type):
            component = parent_of(plan, store)
            assert component.type in STORE_TYPES.values(), f"{store.urn} is not inside a data store component"
            owner = owner_of(plan, store).name.removeprefix(f"ms-{env}-")
            assert store.inputs["tags"]["Service"] == owner, store.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_store_security_groups_admit_only_their_owner(env: str) -> None:
    plan = preview(env).plan
    store_groups = [r for r in plan.of_type(SECURITY_GROUP) if parent_of(plan, r).type in STORE_TYPES.values()]
    assert len(store_groups) == 3, [g.urn for g in store_groups]  # two databases and the cache
    for group in store_groups:
        owner = owner_of(plan, group)
        owner_sg = single(
            (r for r in children_of(plan, owner.urn) if r.type == SECURITY_GROUP), f"group of {owner.urn}"
        )
        port = 5432 if parent_of(plan, group).type == STORE_TYPES["postgres"] else 6379
        ingress = [r for r in plan.of_type(INGRESS) if group.urn in r.property_dependencies.get("securityGroupId", [])]
        assert len(ingress) == 1, f"{group.urn}: ingress rules {[r.urn for r in ingress]}"
        rule = ingress[0]
        assert rule.property_dependencies["referencedSecurityGroupId"] == [owner_sg.urn], rule.urn
        assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", port, port)
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs, rule.urn
        assert "ingress" not in group.inputs and "egress" not in group.inputs, f"{group.urn} has inline rules"
        egress = [r for r in plan.of_type(EGRESS) if group.urn in r.property_dependencies.get("securityGroupId", [])]
        assert egress == [], f"{group.urn}: a data store needs no egress"
        # Only the owner opens egress to the store.
        openers = [
            r for r in plan.of_type(EGRESS) if group.urn in r.property_dependencies.get("referencedSecurityGroupId", [])
        ]
        assert [r.property_dependencies["securityGroupId"] for r in openers] == [[owner_sg.urn]], group.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_postgres_is_private_encrypted_tls_only_and_uses_managed_credentials(env: str) -> None:
    plan = preview(env).plan
    key = plan.outputs["kmsKeyArn"]
    for db in plan.of_type(RDS):
        i = db.inputs
        assert i["engine"] == "postgres" and i["storageType"] == "gp3", db.urn
        assert i["publiclyAccessible"] is False, db.urn
        assert i["storageEncrypted"] is True and i["kmsKeyId"] == key, db.urn
        assert i["manageMasterUserPassword"] is True and i["masterUserSecretKmsKeyId"] == key, db.urn
        assert "password" not in i, f"{db.urn}: a password in the program"
        assert i["iamDatabaseAuthenticationEnabled"] is True and i["autoMinorVersionUpgrade"] is True, db.urn
        assert i["copyTagsToSnapshot"] is True and i["enabledCloudwatchLogsExports"] == ["postgresql"], db.urn
        component = parent_of(plan, db)
        siblings = {r.type: r for r in children_of(plan, component.urn)}
        params = siblings["aws:rds/parameterGroup:ParameterGroup"]
        assert {"name": "rds.force_ssl", "value": "1"} in [
            {k: p[k] for k in ("name", "value")} for p in params.inputs["parameters"]
        ], params.urn
        assert i["parameterGroupName"] == params.outputs["name"], db.urn
        subnets = siblings["aws:rds/subnetGroup:SubnetGroup"]
        assert subnets.inputs["subnetIds"] == isolated_subnets(plan), subnets.urn
        assert i["dbSubnetGroupName"] == subnets.outputs["name"], db.urn
        logs = siblings["aws:cloudwatch/logGroup:LogGroup"]
        assert logs.inputs["name"] == f"/aws/rds/instance/{i['identifier']}/postgresql", logs.urn
        assert logs.inputs["kmsKeyId"] == key and logs.urn in db.dependencies, logs.urn


def test_dev_and_prod_differ_in_resilience_and_protection() -> None:
    expectations = {
        "dev": {"multi": False, "protect": False, "backup": 1, "nodes": 1},
        "prod": {"multi": True, "protect": True, "backup": 30, "nodes": 2},
    }
    for env, want in expectations.items():
        plan = preview(env).plan
        for db in plan.of_type(RDS):
            i = db.inputs
            assert i["multiAz"] is want["multi"] and i["deletionProtection"] is want["protect"], db.urn
            assert i["backupRetentionPeriod"] == want["backup"], db.urn
            assert i["skipFinalSnapshot"] is (not want["protect"]), db.urn
            assert ("finalSnapshotIdentifier" in i) is want["protect"], db.urn
            # dev: Performance Insights off in config; prod: db.r7g.large supports it, encrypted with the key.
            assert i["performanceInsightsEnabled"] is want["protect"], db.urn
            if want["protect"]:
                assert i["performanceInsightsKmsKeyId"] == plan.outputs["kmsKeyArn"], db.urn
        for table in plan.of_type(TABLE):
            assert table.inputs["deletionProtectionEnabled"] is want["protect"], table.urn
        for cache in plan.of_type(CACHE):
            i = cache.inputs
            assert i["numCacheClusters"] == want["nodes"], cache.urn
            assert i["automaticFailoverEnabled"] is want["multi"] and i["multiAzEnabled"] is want["multi"], cache.urn
            assert i["snapshotRetentionLimit"] == want["backup"], cache.urn
        for store in (*plan.of_type(RDS), *plan.of_type(TABLE), *plan.of_type(CACHE)):
            assert store.protect is want["protect"], f"{store.urn}: protect={store.protect}"
            assert store.retain_on_delete is want["protect"], f"{store.urn}: retainOnDelete={store.retain_on_delete}"
        # Only the data itself is protected: security groups and subnet groups stay replaceable.
        assert not any(r.protect for r in plan.resources if r.type in (SECURITY_GROUP, INGRESS)), env


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_dynamodb_table_on_demand_kms_pitr_and_ttl(env: str) -> None:
    plan = preview(env).plan
    table = only(plan, TABLE, f"ms-{env}-order-orders-table")
    i = table.inputs
    assert i["billingMode"] == "PAY_PER_REQUEST", table.urn
    assert i["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": plan.outputs["kmsKeyArn"]}, table.urn
    assert i["pointInTimeRecovery"]["enabled"] is True, table.urn
    assert i["ttl"] == {"attributeName": "expiresAt", "enabled": True}, table.urn
    assert i["hashKey"] == "orderId" and i["attributes"] == [{"name": "orderId", "type": "S"}], table.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_valkey_requires_tls_encrypts_at_rest_and_authenticates_with_iam(env: str) -> None:
    plan = preview(env).plan
    cache = only(plan, CACHE, f"ms-{env}-payment-payment-cache")
    i = cache.inputs
    assert i["engine"] == "valkey", cache.urn
    assert i["transitEncryptionEnabled"] is True and i["transitEncryptionMode"] == "required", cache.urn
    assert i["atRestEncryptionEnabled"] is True and i["kmsKeyId"] == plan.outputs["kmsKeyArn"], cache.urn
    assert "authToken" not in i, cache.urn
    component = parent_of(plan, cache)
    siblings = {r.type: r for r in children_of(plan, component.urn)}
    users = {r.inputs["userName"]: r for r in children_of(plan, component.urn) if r.type == "aws:elasticache/user:User"}
    default = users.pop("default")
    (user,) = users.values()
    assert user.inputs["authenticationMode"] == {"type": "iam"}, user.urn
    assert user.inputs["userId"] == user.inputs["userName"], f"{user.urn}: IAM auth needs userId == userName"
    assert "passwords" not in user.inputs and "-@dangerous" in user.inputs["accessString"], user.urn
    # Every user group holds a user named `default`; ours is switched off with no rights (a Valkey group
    # only admits password or IAM users, so it has a random password nobody receives).
    assert default.inputs["accessString"] == "off -@all" and default.inputs["engine"] == "valkey", default.urn
    assert default.inputs["authenticationMode"]["type"] == "password", default.urn
    group = siblings["aws:elasticache/userGroup:UserGroup"]
    assert group.inputs["userIds"] == [default.inputs["userId"], user.inputs["userId"]], group.urn
    assert i["userGroupIds"] == [group.inputs["userGroupId"]], cache.urn
    subnets = siblings["aws:elasticache/subnetGroup:SubnetGroup"]
    assert subnets.inputs["subnetIds"] == isolated_subnets(plan), subnets.urn
    assert len(i["replicationGroupId"]) <= 40, cache.urn


@pytest.mark.parametrize(
    ("instance_class", "supported"),
    [
        ("db.t4g.micro", False),
        ("db.t4g.small", False),
        ("db.t3.micro", False),
        ("db.t4g.medium", True),
        ("db.r7g.large", True),
    ],
)
def test_performance_insights_support_by_instance_class(instance_class: str, supported: bool) -> None:
    assert supports_performance_insights(instance_class) is supported


def _postgres_plan(data: DataConfig, environment: str) -> Plan:
    args = DataStoreArgs(
        owner="books",
        data=data,
        log_retention_days=7,
        network=StoreNetwork(
            vpc_id="vpc-0123456789abcdef0",
            subnet_ids=["subnet-1a", "subnet-1b"],
            owner_security_group_id="sg-0owner00000000000",
        ),
    )
    context = PlatformContext(
        environment=environment,
        account_id="123456789012",
        region="us-east-1",
        partition="aws",
        tags={"Environment": environment},
    ).with_key(KEY_ARN)
    store = PostgresStore(name="books-db", database_name="books")
    return run_component(lambda: PostgresDatabase(f"ms-{environment}-books-books-db", store, args, context))


def test_performance_insights_is_guarded_for_micro_instances() -> None:
    micro = only(_postgres_plan(DataConfig(db_instance_class="db.t4g.micro", performance_insights=True), "dev"), RDS)
    assert micro.inputs["performanceInsightsEnabled"] is False, micro.urn
    assert "performanceInsightsKmsKeyId" not in micro.inputs, micro.urn
    large = only(_postgres_plan(DataConfig(db_instance_class="db.r7g.large", performance_insights=True), "dev"), RDS)
    assert large.inputs["performanceInsightsEnabled"] is True, large.urn
    assert large.inputs["performanceInsightsKmsKeyId"] == KEY_ARN, large.urn


def test_deletion_protected_non_prod_store_still_keeps_a_final_snapshot() -> None:
    plan = _postgres_plan(DataConfig(deletion_protection=True, multi_az=True), "staging")
    db = only(plan, RDS)
    assert db.inputs["skipFinalSnapshot"] is False, db.urn
    assert db.inputs["finalSnapshotIdentifier"] == "ms-staging-books-books-db-final", db.urn
    assert db.protect is False, f"{db.urn}: protect follows protectResources only"


def test_a_store_in_the_vpc_without_a_network_is_refused_before_any_resource() -> None:
    """DynamoDB needs no network (a Lambda's tables pass none); PostgreSQL and Valkey must be given one."""
    args = DataStoreArgs(owner="books", data=DataConfig(), log_retention_days=7)
    with pytest.raises(ValueError, match=r"PostgreSQL store of 'books': DataStoreArgs\.network is required"):
        args.in_vpc("PostgreSQL")
