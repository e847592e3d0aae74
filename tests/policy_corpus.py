"""A corpus of program-level mistakes (and legitimate changes) for the policy pack.

Each `Mistake` is one change a teammate could plausibly make to the REAL program (`__main__.py`, dev
stack): either resources declared next to the platform once it is built (`after`, which sees the
program's globals, so it can use the components' real outputs), or a Pulumi stack transformation
that changes one property of one resource as it is registered (`transform`). Each names the rule
that must stop it and the fragments its message must contain: the database or service, the intruder
and the path (the resource or setting that opens it).

Running the whole program costs seconds, so mistakes are grouped: the mistakes of one group touch
different resources and are applied to ONE run of the program, and every mistake must be found by
its own message (the fragments name its own path, so one mistake cannot be "found" through another).
`tests/test_policy_corpus.py` runs each group once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

Transform = Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]
ENV = "dev"
ACCOUNT = "123456789012"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
MESH_PORT, EDGE_PORT = 15443, 15444


@dataclass(frozen=True)
class Mistake:
    id: str
    path: str
    """Which kind of path it opens (the corpus must cover every kind in PATHS)."""
    rule: str
    fragments: tuple[str, ...]
    after: Callable[[dict[str, Any]], None] | None = None
    transform: Transform | None = None
    also: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Further (rule, fragments) the same mistake must trigger (e.g. escalation also reaches a database)."""


@dataclass(frozen=True)
class Legit:
    id: str
    what: str
    after: Callable[[dict[str, Any]], None] | None = None
    transform: Transform | None = None
    before: Callable[[], Callable[[], None]] | None = None
    """Runs before the program; returns an undo function (e.g. a patched service catalogue)."""


@dataclass
class Group:
    name: str
    mistakes: list[Mistake] = field(default_factory=list)


PATHS = {
    "iam-inline": "an inline / role policy grant",
    "iam-customer-managed": "a customer-managed policy attached (RolePolicyAttachment, PolicyAttachment, managedPolicyArns)",
    "iam-aws-managed": "an AWS-managed policy (from the snapshot, or unknown)",
    "iam-index-stream-user": "a grant on a table index, a stream or a cache user",
    "principal": "compute running as another service's role",
    "resource-policy": "a resource-based policy",
    "escalation": "iam:PassRole + start compute, sts:AssumeRole",
    "network-membership": "compute attached to another service's (or the database's) security group",
    "network-rule": "a security group rule between groups",
    "network-outside": "a CIDR, a prefix list or a group of no service",
    "credentials": "a literal endpoint, name, ARN or secret in another service's values",
    "dependency": "a dependency on the store",
    "mtls-inbound": "an inbound filter chain that is not strict mTLS against the mesh CA",
    "mtls-callers": "accepted callers that are not the declared callers",
    "mtls-outbound": "an outbound cluster not verifying the exact upstream SAN",
    "mtls-network": "security groups or load balancers bypassing the mesh",
    "transport": "ElastiCache transit encryption, SNS over HTTP",
    "baseline-s3": "S3 public access block, encryption, TLS-only on its own ARN",
    "baseline-tls": "a TLS-only deny that names another resource",
    "baseline-credentials": "credentials inside values, plaintext secrets",
}


# --------------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------------
def svc(program: dict[str, Any], name: str) -> Any:
    return program["platform"].services[name]


def store(program: dict[str, Any], service: str, name: str) -> Any:
    return svc(program, service).stores[name]


def opts(program: dict[str, Any], service: str) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=svc(program, service))


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: Any, resources: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def grant(name: str, service: str, role: str, statement: Callable[[dict[str, Any]], Any]) -> Callable[..., None]:
    """A RolePolicy on `service`'s `role` ("task" or "execution") with statements built from the
    program's outputs (an Output of a dict or of a list of dicts, or plain ones)."""

    def apply(program: dict[str, Any]) -> None:
        role_name = (
            svc(program, service).task_role_name
            if role == "task"
            else svc(program, service).execution_role_arn.apply(lambda a: a.rsplit("/", 1)[-1])
        )
        body = pulumi.Output.from_input(statement(program)).apply(lambda s: doc(*(s if isinstance(s, list) else [s])))
        aws.iam.RolePolicy(name, role=role_name, policy=body, opts=opts(program, service))

    return apply


def lambda_in(
    name: str,
    service: str,
    *,
    role: Callable[[dict[str, Any]], Any] | None = None,
    env: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    groups: Callable[[dict[str, Any]], list[Any]] | None = None,
) -> Callable[[dict[str, Any]], None]:
    """A small Lambda function declared inside `service` (a worker next to the service)."""

    def apply(program: dict[str, Any]) -> None:
        vpc = None
        if groups is not None:
            vpc = aws.lambda_.FunctionVpcConfigArgs(
                security_group_ids=groups(program), subnet_ids=program["platform"].network.private_subnet_ids
            )
        aws.lambda_.Function(
            name,
            role=role(program) if role else svc(program, service).task_role_arn,
            runtime="python3.12",
            handler="index.handler",
            code=pulumi.AssetArchive({"index.py": pulumi.StringAsset("def handler(e, c):\n    return e\n")}),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=env(program)) if env else None,
            vpc_config=vpc,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            opts=opts(program, service),
        )

    return apply


def on(resource_type: str, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Transform:
    """A stack transformation that changes the props of one resource (by type and exact name)."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != resource_type or args.name != name:
            return None
        return pulumi.ResourceTransformationResult(change(dict(args.props)), args.opts)

    return transformation


def containers(service: str, edit: Callable[[list[dict[str, Any]]], None]) -> Transform:
    """Edit the container definitions (a JSON string) of `service`'s task definition."""

    def change(props: dict[str, Any]) -> dict[str, Any]:
        def apply(definitions: str) -> str:
            loaded = json.loads(definitions)
            edit(loaded)
            return json.dumps(loaded)

        props["container_definitions"] = pulumi.Output.from_input(props["container_definitions"]).apply(apply)
        return props

    return on(TASK_DEFINITION, f"ms-{ENV}-{service}-task", change)


def app_env(service: str, **variables: str) -> Transform:
    def edit(definitions: list[dict[str, Any]]) -> None:
        app = next(c for c in definitions if c["name"] == "app")
        app.setdefault("environment", []).extend({"name": k, "value": v} for k, v in variables.items())

    return containers(service, edit)


def bootstrap(service: str, edit: Callable[[dict[str, Any]], None]) -> Transform:
    """Edit `service`'s Envoy bootstrap (the JSON after --config-yaml in the envoy container's command)."""

    def edit_definitions(definitions: list[dict[str, Any]]) -> None:
        envoy = next(c for c in definitions if c["name"] == "envoy")
        loaded = json.loads(envoy["command"][1])
        edit(loaded)
        envoy["command"][1] = json.dumps(loaded)

    return containers(service, edit_definitions)


def listener(b: dict[str, Any], port: int) -> dict[str, Any]:
    return next(
        li for li in b["static_resources"]["listeners"] if li["address"]["socket_address"]["port_value"] == port
    )


def downstream_tls(b: dict[str, Any], port: int = MESH_PORT) -> dict[str, Any]:
    return listener(b, port)["filter_chains"][0]["transport_socket"]["typed_config"]


def cluster(b: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in b["static_resources"]["clusters"] if c["name"] == name)


def spiffe(service: str) -> str:
    return f"spiffe://microservices.internal/{ENV}/{service}"


def rbac_principals(b: dict[str, Any]) -> list[dict[str, Any]]:
    hcm = listener(b, MESH_PORT)["filter_chains"][0]["filters"][0]["typed_config"]
    rbac = next(f for f in hcm["http_filters"] if "rbac" in f["name"])
    return next(iter(rbac["typed_config"]["rules"]["policies"].values()))["principals"]


# --------------------------------------------------------------------------------------------------
# The stores and their messages.
# --------------------------------------------------------------------------------------------------
USERS_DB = "Database 'ms-dev-user-users-db' (RDS instance) owned by service 'ms-dev-user'"
INVENTORY_DB = "Database 'ms-dev-inventory-inventory-db' (RDS instance) owned by service 'ms-dev-inventory'"
ORDERS_TABLE = "Database 'ms-dev-order-orders-table' (DynamoDB table) owned by service 'ms-dev-order'"
PAYMENT_CACHE = (
    "Database 'ms-dev-payment-payment-cache' (ElastiCache replication group) owned by service 'ms-dev-payment'"
)
SHARED = "no-shared-databases"
MTLS = "mtls-required"


def shared_with(intruder: str) -> str:
    return f"is shared with service 'ms-{ENV}-{intruder}'"


def table(p: dict[str, Any]) -> Any:
    return store(p, "order", "orders-table").table


def users_db(p: dict[str, Any]) -> Any:
    return store(p, "user", "users-db")


def inventory_db(p: dict[str, Any]) -> Any:
    return store(p, "inventory", "inventory-db")


def cache(p: dict[str, Any]) -> Any:
    return store(p, "payment", "payment-cache")


def _customer_policy_attached(p: dict[str, Any]) -> None:
    policy = aws.iam.Policy(
        "ms-dev-reporting-read",
        policy=doc(allow("rds-db:connect", "arn:aws:rds-db:*:*:dbuser:*/*")),
    )
    aws.iam.RolePolicyAttachment(
        "ms-dev-reporting-read-user", role=svc(p, "user").task_role_name, policy_arn=policy.arn
    )


def _policy_attachment(p: dict[str, Any]) -> None:
    policy = aws.iam.Policy(
        "ms-dev-cache-readers",
        policy=cache(p).replication_group.arn.apply(lambda a: doc(allow("elasticache:Connect", a))),
    )
    aws.iam.PolicyAttachment(
        "ms-dev-cache-readers-attach", roles=[svc(p, "order").task_role_name], policy_arn=policy.arn
    )


def _aws_managed_attachment(p: dict[str, Any]) -> None:
    aws.iam.RolePolicyAttachment(
        "ms-dev-user-dynamodb-read",
        role=svc(p, "user").task_role_name,
        policy_arn="arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
        opts=opts(p, "user"),
    )


def _worker_task_definition(p: dict[str, Any]) -> None:
    container = {
        "name": "worker",
        "image": "public.ecr.aws/docker/library/python:3.12-slim",
        "essential": True,
        "readonlyRootFilesystem": True,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": "/ecs/ms-dev-user",
                "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "worker",
            },
        },
    }
    aws.ecs.TaskDefinition(
        "ms-dev-user-worker",
        family="ms-dev-user-worker",
        cpu="256",
        memory="512",
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        container_definitions=json.dumps([container]),
        task_role_arn=svc(p, "payment").task_role_arn,  # copy-pasted from the payment service
        execution_role_arn=svc(p, "user").execution_role_arn,
        opts=opts(p, "user"),
    )


def _dynamodb_share(p: dict[str, Any]) -> None:
    body = pulumi.Output.all(table(p).arn, svc(p, "payment").task_role_arn).apply(
        lambda a: doc({"Effect": "Allow", "Principal": {"AWS": a[1]}, "Action": "dynamodb:GetItem", "Resource": a[0]})
    )
    aws.dynamodb.ResourcePolicy("ms-dev-orders-share", resource_arn=table(p).arn, policy=body, opts=opts(p, "order"))


def _public_stream(p: dict[str, Any]) -> None:
    body = table(p).stream_arn.apply(
        lambda a: doc({"Effect": "Allow", "Principal": "*", "Action": "dynamodb:GetRecords", "Resource": a})
    )
    aws.dynamodb.ResourcePolicy(
        "ms-dev-orders-stream-open", resource_arn=table(p).stream_arn, policy=body, opts=opts(p, "order")
    )


def _secret_share(p: dict[str, Any]) -> None:
    body = pulumi.Output.all(users_db(p).master_secret_arn, svc(p, "inventory").task_role_arn).apply(
        lambda a: doc(
            {"Effect": "Allow", "Principal": {"AWS": a[1]}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        )
    )
    aws.secretsmanager.SecretPolicy(
        "ms-dev-users-db-secret-share", secret_arn=users_db(p).master_secret_arn, policy=body, opts=opts(p, "user")
    )


def _ecs_service_in_payment_group(p: dict[str, Any]) -> None:
    aws.ecs.Service(
        "ms-dev-order-batch",
        cluster=p["platform"].cluster.cluster_arn,
        task_definition="ms-dev-order",
        launch_type="FARGATE",
        desired_count=1,
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=p["platform"].network.private_subnet_ids,
            security_groups=[svc(p, "payment").security_group_id],  # "it needs the cache too"
        ),
        opts=opts(p, "order"),
    )


def _ingress(
    name: str, target: Callable[[dict[str, Any]], Any], port: int, **source: Callable[[dict[str, Any]], Any] | str
) -> Callable[[dict[str, Any]], None]:
    def apply(p: dict[str, Any]) -> None:
        resolved = {k: (v(p) if callable(v) else v) for k, v in source.items()}
        aws.vpc.SecurityGroupIngressRule(
            name, security_group_id=target(p), ip_protocol="tcp", from_port=port, to_port=port, **resolved
        )

    return apply


def _cidr_rule(p: dict[str, Any]) -> None:
    aws.ec2.SecurityGroupRule(
        "ms-dev-payment-cache-from-vpc",
        type="ingress",
        security_group_id=cache(p).security_group_id,
        protocol="tcp",
        from_port=6379,
        to_port=6379,
        cidr_blocks=["10.0.0.0/16"],
    )


def _bastion(p: dict[str, Any]) -> None:
    bastion = aws.ec2.SecurityGroup("ms-dev-bastion-sg", vpc_id=p["platform"].network.vpc_id, description="bastion")
    aws.vpc.SecurityGroupIngressRule(
        "ms-dev-users-db-from-bastion",
        security_group_id=users_db(p).security_group_id,
        referenced_security_group_id=bastion.id,
        ip_protocol="tcp",
        from_port=5432,
        to_port=5432,
    )


def _parameter(p: dict[str, Any]) -> None:
    aws.ssm.Parameter("ms-dev-payment-orders-ref", type="String", value=table(p).name, opts=opts(p, "payment"))


GROUPS: list[Group] = [
    Group(
        "iam",
        [
            Mistake(
                "inline grant on another service's table",
                "iam-inline",
                SHARED,
                (ORDERS_TABLE, shared_with("payment"), "'ms-dev-payment-reads-orders' grants dynamodb:GetItem"),
                after=grant(
                    "ms-dev-payment-reads-orders",
                    "payment",
                    "task",
                    lambda p: table(p).arn.apply(lambda a: allow("dynamodb:GetItem", a)),
                ),
            ),
            Mistake(
                "wildcard table grant",
                "iam-inline",
                SHARED,
                (ORDERS_TABLE, shared_with("inventory"), "grants dynamodb:Query on arn:aws:dynamodb:*:*:table/*"),
                after=grant(
                    "ms-dev-inventory-all-tables",
                    "inventory",
                    "task",
                    lambda p: allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/*"),
                ),
            ),
            Mistake(
                "execution role reads another database's master secret",
                "iam-inline",
                SHARED,
                (
                    USERS_DB,
                    shared_with("order"),
                    "'ms-dev-order-reads-users-secret' grants secretsmanager:GetSecretValue",
                ),
                after=grant(
                    "ms-dev-order-reads-users-secret",
                    "order",
                    "execution",
                    lambda p: users_db(p).master_secret_arn.apply(lambda a: allow("secretsmanager:GetSecretValue", a)),
                ),
            ),
            Mistake(
                "customer-managed policy attached with RolePolicyAttachment",
                "iam-customer-managed",
                SHARED,
                (
                    INVENTORY_DB,
                    shared_with("user"),
                    "aws:iam/policy:Policy 'ms-dev-reporting-read' grants rds-db:connect",
                ),
                after=_customer_policy_attached,
            ),
            Mistake(
                "customer-managed policy attached with PolicyAttachment",
                "iam-customer-managed",
                SHARED,
                (
                    PAYMENT_CACHE,
                    shared_with("order"),
                    "aws:iam/policy:Policy 'ms-dev-cache-readers' grants elasticache:Connect",
                ),
                after=_policy_attachment,
            ),
            Mistake(
                "AWS-managed AmazonDynamoDBReadOnlyAccess on a service role",
                "iam-aws-managed",
                SHARED,
                (
                    ORDERS_TABLE,
                    shared_with("user"),
                    "AWS managed policy arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess grants",
                ),
                after=_aws_managed_attachment,
            ),
            Mistake(
                "AWS-managed policy unknown to the snapshot in managedPolicyArns",
                "iam-aws-managed",
                SHARED,
                (USERS_DB, shared_with("inventory"), "AmazonRDSFullAccess (unknown to the pack's snapshot"),
                transform=on(
                    "aws:iam/role:Role",
                    "ms-dev-inventory-task",
                    lambda props: {**props, "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonRDSFullAccess"]},
                ),
            ),
            Mistake(
                "grant on another service's table index",
                "iam-index-stream-user",
                SHARED,
                (ORDERS_TABLE, shared_with("user"), "'ms-dev-user-orders-by-customer' grants dynamodb:Query"),
                after=grant(
                    "ms-dev-user-orders-by-customer",
                    "user",
                    "task",
                    lambda p: table(p).arn.apply(lambda a: allow("dynamodb:Query", f"{a}/index/*")),
                ),
            ),
            Mistake(
                "grant on another service's table stream",
                "iam-index-stream-user",
                SHARED,
                (ORDERS_TABLE, shared_with("payment"), "'ms-dev-payment-order-stream' grants dynamodb:GetRecords"),
                after=grant(
                    "ms-dev-payment-order-stream",
                    "payment",
                    "task",
                    lambda p: table(p).stream_arn.apply(
                        lambda a: allow(["dynamodb:GetRecords", "dynamodb:GetShardIterator"], a)
                    ),
                ),
            ),
            Mistake(
                "grant on another service's ElastiCache user",
                "iam-index-stream-user",
                SHARED,
                (PAYMENT_CACHE, shared_with("user"), "'ms-dev-user-cache-connect' grants elasticache:Connect"),
                after=grant(
                    "ms-dev-user-cache-connect",
                    "user",
                    "task",
                    lambda p: cache(p).user_arn.apply(lambda a: allow("elasticache:Connect", a)),
                ),
            ),
            Mistake(
                "inline_policies on a role granting IAM auth to every database user",
                "iam-inline",
                SHARED,
                (
                    INVENTORY_DB,
                    shared_with("payment"),
                    "aws:iam/role:Role 'ms-dev-payment-execution' grants rds-db:connect",
                ),
                transform=on(
                    "aws:iam/role:Role",
                    "ms-dev-payment-execution",
                    lambda props: {
                        **props,
                        "inline_policies": [
                            {
                                "name": "legacy-db",
                                "policy": doc(
                                    allow("rds-db:connect", f"arn:aws:rds-db:us-east-1:{ACCOUNT}:dbuser:*/app")
                                ),
                            }
                        ],
                    },
                ),
            ),
        ],
    ),
    Group(
        "principals-escalation-resource-policies",
        [
            Mistake(
                "Lambda runs with another service's task role",
                "principal",
                SHARED,
                (
                    ORDERS_TABLE,
                    shared_with("inventory"),
                    "Function 'ms-dev-inventory-sync' runs as role 'ms-dev-order-task'",
                ),
                after=lambda_in("ms-dev-inventory-sync", "inventory", role=lambda p: svc(p, "order").task_role_arn),
            ),
            Mistake(
                "task definition runs with another service's task role (copy-paste of task_role_arn)",
                "principal",
                SHARED,
                (
                    PAYMENT_CACHE,
                    shared_with("user"),
                    "task definition 'ms-dev-user-worker' runs as role 'ms-dev-payment-task' (taskRoleArn)",
                ),
                after=_worker_task_definition,
            ),
            Mistake(
                "iam:PassRole on role/* with ecs:RunTask",
                "escalation",
                "iam-no-privilege-escalation",
                ("role 'ms-dev-order-task", "iam:PassRole on arn:aws:iam::*:role/*", "any role of the account"),
                after=grant(
                    "ms-dev-order-run-anything",
                    "order",
                    "task",
                    lambda p: [
                        allow("iam:PassRole", "arn:aws:iam::*:role/*"),
                        allow("ecs:RunTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/*"),
                    ],
                ),
                also=((SHARED, (USERS_DB, shared_with("order"), "can become role 'ms-dev-user-execution")),),
            ),
            Mistake(
                "sts:AssumeRole on another service's role",
                "escalation",
                "iam-no-privilege-escalation",
                ("ms-dev-inventory-task", "can become role 'ms-dev-user-execution", "sts:AssumeRole"),
                after=grant(
                    "ms-dev-inventory-assume-user",
                    "inventory",
                    "task",
                    lambda p: svc(p, "user").execution_role_arn.apply(lambda a: allow("sts:AssumeRole", a)),
                ),
                also=((SHARED, (USERS_DB, shared_with("inventory"), "sts:AssumeRole")),),
            ),
            Mistake(
                "iam:PassRole on another service's role with lambda:CreateFunction",
                "escalation",
                "iam-no-privilege-escalation",
                ("ms-dev-payment-task", "can become role 'ms-dev-order-task", "lambda:CreateFunction"),
                after=grant(
                    "ms-dev-payment-pass-order",
                    "payment",
                    "task",
                    lambda p: svc(p, "order").task_role_arn.apply(
                        lambda a: [
                            allow("iam:PassRole", a),
                            allow(
                                "lambda:CreateFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ms-dev-payment-*"
                            ),
                        ]
                    ),
                ),
                also=((SHARED, (ORDERS_TABLE, shared_with("payment"), "can become role 'ms-dev-order-task")),),
            ),
            Mistake(
                "DynamoDB resource policy granting another service's role",
                "resource-policy",
                SHARED,
                (
                    ORDERS_TABLE,
                    shared_with("payment"),
                    "ResourcePolicy 'ms-dev-orders-share' allows dynamodb:GetItem to role 'ms-dev-payment-task",
                ),
                after=_dynamodb_share,
            ),
            Mistake(
                "DynamoDB stream resource policy open to every principal",
                "resource-policy",
                SHARED,
                (
                    ORDERS_TABLE,
                    shared_with("user"),
                    "'ms-dev-orders-stream-open' allows dynamodb:GetRecords to every principal",
                ),
                after=_public_stream,
            ),
            Mistake(
                "secret policy sharing the database credentials",
                "resource-policy",
                SHARED,
                (
                    USERS_DB,
                    shared_with("inventory"),
                    "SecretPolicy 'ms-dev-users-db-secret-share' allows secretsmanager:GetSecretValue",
                ),
                after=_secret_share,
            ),
        ],
    ),
    Group(
        "network-credentials",
        [
            Mistake(
                "Lambda attached to the owner's security group",
                "network-membership",
                SHARED,
                (
                    USERS_DB,
                    shared_with("order"),
                    "its Lambda function 'ms-dev-order-audit' is attached to 'ms-dev-user-sg'",
                ),
                after=lambda_in("ms-dev-order-audit", "order", groups=lambda p: [svc(p, "user").security_group_id]),
            ),
            Mistake(
                "ECS service attached to the owner's security group",
                "network-membership",
                SHARED,
                (
                    PAYMENT_CACHE,
                    shared_with("order"),
                    "its ECS service 'ms-dev-order-batch' is attached to 'ms-dev-payment-sg'",
                ),
                after=_ecs_service_in_payment_group,
            ),
            Mistake(
                "Lambda attached to the database's own security group",
                "network-membership",
                SHARED,
                (
                    INVENTORY_DB,
                    shared_with("user"),
                    "Lambda function 'ms-dev-user-migrate' is attached to the database's security group",
                ),
                after=lambda_in("ms-dev-user-migrate", "user", groups=lambda p: [inventory_db(p).security_group_id]),
            ),
            Mistake(
                "security group rule from another service into the database",
                "network-rule",
                SHARED,
                (
                    USERS_DB,
                    shared_with("order"),
                    "security group rule 'ms-dev-order-to-users-db' lets security group 'ms-dev-order-sg'",
                ),
                after=_ingress(
                    "ms-dev-order-to-users-db",
                    lambda p: users_db(p).security_group_id,
                    5432,
                    referenced_security_group_id=lambda p: svc(p, "order").security_group_id,
                ),
            ),
            Mistake(
                "database ingress from a managed prefix list",
                "network-outside",
                SHARED,
                (
                    INVENTORY_DB,
                    "reachable from outside its owner",
                    "'ms-dev-inventory-db-from-vpn' lets managed prefix list pl-0a1b2c3d4e5f60718",
                ),
                after=_ingress(
                    "ms-dev-inventory-db-from-vpn",
                    lambda p: inventory_db(p).security_group_id,
                    5432,
                    prefix_list_id="pl-0a1b2c3d4e5f60718",
                ),
            ),
            Mistake(
                "cache ingress from a CIDR (aws.ec2.SecurityGroupRule)",
                "network-outside",
                SHARED,
                (
                    PAYMENT_CACHE,
                    "reachable from outside its owner",
                    "'ms-dev-payment-cache-from-vpc' lets CIDR 10.0.0.0/16",
                ),
                after=_cidr_rule,
            ),
            Mistake(
                "database ingress from a group no service owns",
                "network-outside",
                SHARED,
                (USERS_DB, "reachable from outside its owner", "lets security group 'ms-dev-bastion-sg'"),
                after=_bastion,
            ),
            Mistake(
                "another service's Lambda holds the database endpoint",
                "credentials",
                SHARED,
                (
                    USERS_DB,
                    shared_with("payment"),
                    "environment variable 'USERS_DB_HOST' of Function 'ms-dev-payment-report' holds its endpoint",
                ),
                after=lambda_in(
                    "ms-dev-payment-report", "payment", env=lambda p: {"USERS_DB_HOST": users_db(p).address}
                ),
            ),
            Mistake(
                "another service's Lambda holds the table name",
                "credentials",
                SHARED,
                (
                    ORDERS_TABLE,
                    shared_with("inventory"),
                    "environment variable 'ORDERS_TABLE' of Function 'ms-dev-inventory-reconcile' holds its name",
                ),
                after=lambda_in(
                    "ms-dev-inventory-reconcile", "inventory", env=lambda p: {"ORDERS_TABLE": table(p).name}
                ),
            ),
            Mistake(
                "another service's Lambda holds the cache endpoint",
                "credentials",
                SHARED,
                (
                    PAYMENT_CACHE,
                    shared_with("user"),
                    "environment variable 'CACHE_URL' of Function 'ms-dev-user-cache-warm' holds its endpoint",
                ),
                after=lambda_in(
                    "ms-dev-user-cache-warm",
                    "user",
                    env=lambda p: {
                        "CACHE_URL": cache(p).replication_group.primary_endpoint_address.apply(
                            lambda h: f"rediss://{h}:6379"
                        )
                    },
                ),
            ),
            Mistake(
                "another service's Lambda holds the credentials secret ARN",
                "credentials",
                SHARED,
                (
                    INVENTORY_DB,
                    shared_with("order"),
                    "'DB_SECRET_ARN' of Function 'ms-dev-order-db-rotate' holds its credentials secret ARN",
                ),
                after=lambda_in(
                    "ms-dev-order-db-rotate",
                    "order",
                    env=lambda p: {"DB_SECRET_ARN": inventory_db(p).master_secret_arn},
                ),
            ),
            Mistake(
                "another service's resource depends on the table",
                "dependency",
                SHARED,
                (
                    ORDERS_TABLE,
                    shared_with("payment"),
                    "aws:ssm/parameter:Parameter 'ms-dev-payment-orders-ref' depends on it",
                ),
                after=_parameter,
            ),
        ],
    ),
]


# --------------------------------------------------------------------------------------------------
# mTLS, transport and baseline.
# --------------------------------------------------------------------------------------------------
def _plaintext_default_chain(b: dict[str, Any]) -> None:
    inbound = listener(b, MESH_PORT)
    inbound["default_filter_chain"] = {"filters": json.loads(json.dumps(inbound["filter_chains"][0]["filters"]))}


def _accept_untrusted(b: dict[str, Any]) -> None:
    downstream_tls(b)["common_tls_context"]["validation_context"]["trust_chain_verification"] = "ACCEPT_UNTRUSTED"


def _prefix_san(b: dict[str, Any]) -> None:
    validation = downstream_tls(b)["common_tls_context"]["validation_context"]
    validation["match_typed_subject_alt_names"] = [
        {"san_type": "URI", "matcher": {"prefix": f"spiffe://microservices.internal/{ENV}/"}}
    ]


def _wrong_upstream_san(b: dict[str, Any]) -> None:
    tls = cluster(b, "upstream_payment")["transport_socket"]["typed_config"]
    tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] = [
        {"san_type": "URI", "matcher": {"exact": spiffe("inventory")}}
    ]


def _extra_caller(b: dict[str, Any]) -> None:
    rbac_principals(b).append({"authenticated": {"principal_name": {"exact": spiffe("user")}}})
    validation = downstream_tls(b)["common_tls_context"]["validation_context"]
    validation["match_typed_subject_alt_names"].append({"san_type": "URI", "matcher": {"exact": spiffe("user")}})


def _no_client_certificate(b: dict[str, Any]) -> None:
    downstream_tls(b)["require_client_certificate"] = False


def _system_ca(b: dict[str, Any]) -> None:
    downstream_tls(b)["common_tls_context"]["validation_context"]["trusted_ca"] = {
        "filename": "/etc/ssl/certs/ca-certificates.crt"
    }


def _plaintext_upstream(b: dict[str, Any]) -> None:
    del cluster(b, "upstream_user")["transport_socket"]


def _app_port_target(props: dict[str, Any]) -> dict[str, Any]:
    balancers = [
        aws.ecs.ServiceLoadBalancerArgs(target_group_arn=lb.target_group_arn, container_name="app", container_port=8080)
        for lb in props["load_balancers"]
    ]
    return {**props, "load_balancers": balancers}


def _service_connect(props: dict[str, Any]) -> dict[str, Any]:
    connect = aws.ecs.ServiceServiceConnectConfigurationArgs(
        enabled=True,
        namespace="microservices.internal",
        services=[
            aws.ecs.ServiceServiceConnectConfigurationServiceArgs(
                port_name="http",
                tls=aws.ecs.ServiceServiceConnectConfigurationServiceTlsArgs(
                    issuer_cert_authority=aws.ecs.ServiceServiceConnectConfigurationServiceTlsIssuerCertAuthorityArgs(
                        aws_pca_authority_arn=f"arn:aws:acm-pca:us-east-1:{ACCOUNT}:certificate-authority/11111111-2222-3333-4444-555555555555"
                    )
                ),
            )
        ],
    )
    return {**props, "service_connect_configuration": connect}


def _bucket(
    name: str, *, block: bool = True, encrypt: bool = True, tls_on: Callable[[Any], Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    def apply(p: dict[str, Any]) -> None:
        bucket = aws.s3.Bucket(name)
        if block:
            aws.s3.BucketPublicAccessBlock(
                f"{name}-pab",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
            )
        if encrypt:
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-sse",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    )
                ],
            )
        target = tls_on(bucket) if tls_on else bucket.arn
        policy = pulumi.Output.from_input(target).apply(
            lambda arn: doc(
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            )
        )
        aws.s3.BucketPolicy(f"{name}-policy", bucket=bucket.id, policy=policy)

    return apply


def _queue_with_foreign_tls(p: dict[str, Any]) -> None:
    key = p["platform"].key.key_arn
    dlq = aws.sqs.Queue("ms-dev-order-export-queue-dlq", kms_master_key_id=key)
    queue = aws.sqs.Queue(
        "ms-dev-order-export-queue",
        kms_master_key_id=key,
        redrive_policy=dlq.arn.apply(lambda a: json.dumps({"deadLetterTargetArn": a, "maxReceiveCount": 5})),
    )
    for name, q, other in (("ms-dev-order-export-queue", queue, dlq), ("ms-dev-order-export-queue-dlq", dlq, dlq)):
        # copy-paste: the export queue's policy names the DLQ's ARN
        aws.sqs.QueuePolicy(
            f"{name}-policy",
            queue_url=q.url,
            policy=other.arn.apply(
                lambda arn: doc(
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                )
            ),
        )


def _access_key_lambda(p: dict[str, Any]) -> None:
    lambda_in("ms-dev-payment-legacy-export", "payment", env=lambda _p: {"LEGACY_S3_KEY": "AKIAIOSFODNN7EXAMPLE"})(p)


GROUPS += [
    Group(
        "mtls-transport",
        [
            Mistake(
                "plaintext default_filter_chain on the inbound listener (permissive mode)",
                "mtls-inbound",
                MTLS,
                ("service 'ms-dev-payment'", "default_filter_chain accepts plaintext"),
                transform=bootstrap("payment", _plaintext_default_chain),
            ),
            Mistake(
                "trust_chain_verification ACCEPT_UNTRUSTED",
                "mtls-inbound",
                MTLS,
                ("service 'ms-dev-inventory'", "ACCEPT_UNTRUSTED"),
                transform=bootstrap("inventory", _accept_untrusted),
            ),
            Mistake(
                "SAN prefix matcher instead of exact callers",
                "mtls-inbound",
                MTLS,
                ("service 'ms-dev-user'", "matches client SANs with", "prefix"),
                transform=bootstrap("user", _prefix_san),
            ),
            Mistake(
                "outbound cluster verifies another service's SPIFFE id",
                "mtls-outbound",
                MTLS,
                (
                    "service 'ms-dev-order'",
                    "upstream_payment",
                    "verifies the identity spiffe://microservices.internal/dev/inventory",
                ),
                transform=bootstrap("order", _wrong_upstream_san),
            ),
            Mistake(
                "mesh port opened to a caller the service does not accept",
                "mtls-network",
                MTLS,
                (
                    "'ms-dev-payment-mesh-from-user'",
                    "service 'ms-dev-payment'",
                    "service 'ms-dev-user'",
                    "does not accept",
                ),
                after=_ingress(
                    "ms-dev-payment-mesh-from-user",
                    lambda p: svc(p, "payment").security_group_id,
                    MESH_PORT,
                    referenced_security_group_id=lambda p: svc(p, "user").security_group_id,
                ),
            ),
            Mistake(
                "app port opened between two services",
                "mtls-network",
                MTLS,
                (
                    "'ms-dev-inventory-app-from-order'",
                    "port 8080 of service 'ms-dev-inventory'",
                    "service 'ms-dev-order'",
                ),
                after=_ingress(
                    "ms-dev-inventory-app-from-order",
                    lambda p: svc(p, "inventory").security_group_id,
                    8080,
                    referenced_security_group_id=lambda p: svc(p, "order").security_group_id,
                ),
            ),
            Mistake(
                "mesh port opened to a CIDR",
                "mtls-network",
                MTLS,
                ("'ms-dev-user-mesh-from-vpc'", "service 'ms-dev-user'", "10.0.0.0/8"),
                after=_ingress(
                    "ms-dev-user-mesh-from-vpc",
                    lambda p: svc(p, "user").security_group_id,
                    MESH_PORT,
                    cidr_ipv4="10.0.0.0/8",
                ),
            ),
            Mistake(
                "load balancer reaches the app port",
                "mtls-network",
                MTLS,
                ("load balancer", "port 8080 of service 'ms-dev-order'", "'ms-dev-order-app-from-alb'"),
                after=_ingress(
                    "ms-dev-order-app-from-alb",
                    lambda p: svc(p, "order").security_group_id,
                    8080,
                    referenced_security_group_id=lambda p: p["platform"].edge.alb_security_group_id,
                ),
            ),
            Mistake(
                "target group sends HTTP to the app port",
                "mtls-network",
                MTLS,
                ("service 'ms-dev-inventory'", "target group 'ms-dev-inventory-public-tg' sends HTTP to port 8080"),
                transform=on(
                    "aws:lb/targetGroup:TargetGroup",
                    "ms-dev-inventory-public-tg",
                    lambda props: {**props, "protocol": "HTTP", "port": 8080},
                ),
            ),
            Mistake(
                "ECS service registers the app container with the load balancer",
                "mtls-network",
                MTLS,
                ("service 'ms-dev-user'", "registers container 'app' port 8080"),
                transform=on("aws:ecs/service:Service", "ms-dev-user-service", _app_port_target),
            ),
            Mistake(
                "ECS Service Connect TLS instead of the mesh",
                "mtls-network",
                MTLS,
                ("ECS service 'ms-dev-payment-service'", "TLS, not mutual"),
                transform=on("aws:ecs/service:Service", "ms-dev-payment-service", _service_connect),
            ),
            Mistake(
                "ElastiCache transit encryption preferred",
                "transport",
                MTLS,
                ("'ms-dev-payment-payment-cache'", "transitEncryptionMode preferred"),
                transform=on(
                    "aws:elasticache/replicationGroup:ReplicationGroup",
                    "ms-dev-payment-payment-cache",
                    lambda props: {**props, "transit_encryption_mode": "preferred"},
                ),
            ),
            Mistake(
                "SNS subscription over plain HTTP",
                "transport",
                MTLS,
                ("SNS subscription 'ms-dev-notifications-webhook'", "plain HTTP"),
                after=lambda p: (
                    aws.sns.TopicSubscription(
                        "ms-dev-notifications-webhook",
                        topic=p["platform"].events.topic_arn,
                        protocol="http",
                        endpoint="http://hooks.example.com/notify",
                    )
                    and None
                ),
            ),
        ],
    ),
    Group(
        "mtls-baseline",
        [
            Mistake(
                "the service accepts a caller that does not call it",
                "mtls-callers",
                MTLS,
                ("service 'ms-dev-payment'", "accepts the caller 'user', which declares no call to it"),
                transform=bootstrap("payment", _extra_caller),
            ),
            Mistake(
                "inbound listener does not require client certificates",
                "mtls-inbound",
                MTLS,
                ("service 'ms-dev-inventory'", "does not require a client certificate", "TLS, not mutual"),
                transform=bootstrap("inventory", _no_client_certificate),
            ),
            Mistake(
                "inbound listener trusts the system CA bundle",
                "mtls-inbound",
                MTLS,
                ("service 'ms-dev-user'", "/etc/ssl/certs/ca-certificates.crt", "not the mesh CA"),
                transform=bootstrap("user", _system_ca),
            ),
            Mistake(
                "plaintext outbound cluster",
                "mtls-outbound",
                MTLS,
                ("service 'ms-dev-order'", "upstream_user", "connects in plaintext"),
                transform=bootstrap("order", _plaintext_upstream),
            ),
            Mistake(
                "bucket without a public access block",
                "baseline-s3",
                "s3-bucket-baseline",
                ("S3 bucket 'ms-dev-exports'", "does not block public access"),
                after=_bucket("ms-dev-exports", block=False),
            ),
            Mistake(
                "bucket without default encryption",
                "baseline-s3",
                "s3-bucket-baseline",
                ("S3 bucket 'ms-dev-archive'", "no default encryption"),
                after=_bucket("ms-dev-archive", encrypt=False),
            ),
            Mistake(
                "bucket TLS-only policy naming another bucket (copy-paste)",
                "baseline-tls",
                "s3-bucket-baseline",
                ("S3 bucket 'ms-dev-reports'", "denying requests without TLS on its own ARN"),
                after=_bucket("ms-dev-reports", tls_on=lambda _b: "arn:aws:s3:::ms-dev-some-other-bucket"),
            ),
            Mistake(
                "queue TLS-only deny naming another queue's ARN",
                "baseline-tls",
                "sqs-sns-tls-only",
                ("SQS queue 'ms-dev-order-export-queue'", "on its own ARN"),
                after=_queue_with_foreign_tls,
            ),
            Mistake(
                "credential inside a URL in a plain environment variable",
                "baseline-credentials",
                "no-credentials-in-values",
                ("environment variable 'DATABASE_URL'", "ms-dev-inventory-task", "a URL with a password"),
                transform=app_env("inventory", DATABASE_URL="postgresql://app:s3cr3t-pw@db.internal:5432/inventory"),
            ),
            Mistake(
                "AWS access key in a Lambda environment",
                "baseline-credentials",
                "no-credentials-in-values",
                ("environment variable 'LEGACY_S3_KEY'", "ms-dev-payment-legacy-export", "an AWS access key id"),
                after=_access_key_lambda,
            ),
            Mistake(
                "password as a plain environment value",
                "baseline-credentials",
                "ecs-no-plaintext-secrets",
                ("'SMTP_PASSWORD'", "ms-dev-payment-task"),
                transform=app_env("payment", SMTP_PASSWORD="hunter2hunter2"),
            ),
        ],
    ),
]
MISTAKES = [m for g in GROUPS for m in g.mistakes]


# --------------------------------------------------------------------------------------------------
# Legitimate changes: all of them together must pass with 0 mandatory violations.
# --------------------------------------------------------------------------------------------------
def _new_service_from_a_spec() -> Callable[[], None]:
    import services
    from model.spec import DynamoStore, ServiceSpec

    original = services.discover_specs
    shipping = ServiceSpec(
        name="shipping",
        description="Shipment tracking",
        image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
        run_as_user="101:101",
        container_port=8080,
        health_check_path="/health",
        calls=("inventory",),
        data_stores=(DynamoStore(name="shipments-table", hash_key="shipmentId"),),
    )

    def discover() -> list[ServiceSpec]:
        # Calls are two-sided: inventory accepts the new caller too.
        specs = original()
        return [
            s.model_copy(update={"accepts": (*s.accepts, "shipping")}) if s.name == "inventory" else s for s in specs
        ] + [shipping]

    services.discover_specs = discover  # type: ignore[assignment]

    def undo() -> None:
        services.discover_specs = original  # type: ignore[assignment]

    return undo


LEGIT: list[Legit] = [
    Legit(
        "new service from a spec",
        "a 'shipping' spec that calls inventory (which accepts it) and owns a table",
        before=_new_service_from_a_spec,
    ),
    Legit(
        "service reads its own table's index",
        "dynamodb:Query on its own table/index/*",
        after=grant(
            "ms-dev-order-own-index",
            "order",
            "task",
            lambda p: table(p).arn.apply(lambda a: allow("dynamodb:Query", f"{a}/index/*")),
        ),
    ),
    Legit(
        "service reads its own table's stream",
        "stream actions on its own stream ARN",
        after=grant(
            "ms-dev-order-own-stream",
            "order",
            "task",
            lambda p: table(p).stream_arn.apply(
                lambda a: allow(["dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"], a)
            ),
        ),
    ),
    Legit(
        "unscopable action",
        "servicediscovery:DiscoverInstances on '*'",
        after=grant(
            "ms-dev-inventory-discovery",
            "inventory",
            "task",
            lambda p: allow("servicediscovery:DiscoverInstances", "*"),
        ),
    ),
    Legit(
        "harmless environment names",
        "PASSWORD_MIN_LENGTH, TOKEN_TTL_SECONDS, API_KEY_HEADER",
        transform=app_env("user", PASSWORD_MIN_LENGTH="12", TOKEN_TTL_SECONDS="3600", API_KEY_HEADER="x-api-key"),
    ),
    Legit(
        "URL without credentials",
        "a provider URL in a plain value",
        transform=app_env("payment", PAYMENT_PROVIDER_URL="https://api.provider.example/v1/charges"),
    ),
    Legit(
        "service uses the environment's shared KMS key for its own table",
        "kms:Decrypt via DynamoDB on the platform key (not a member of any data store)",
        after=grant(
            "ms-dev-order-key-via-dynamodb",
            "order",
            "task",
            lambda p: p["platform"].key.key_arn.apply(
                lambda a: allow(
                    "kms:Decrypt", a, Condition={"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}}
                )
            ),
        ),
    ),
    Legit(
        "AWS-managed policy without data access",
        "AWSXRayDaemonWriteAccess (in the snapshot) on a task role",
        after=lambda p: (
            aws.iam.RolePolicyAttachment(
                "ms-dev-payment-xray",
                role=svc(p, "payment").task_role_name,
                policy_arn="arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
                opts=opts(p, "payment"),
            )
            and None
        ),
    ),
    Legit(
        "PassRole scoped to its own roles",
        "iam:PassRole on its own task/execution roles with ecs:RunTask on its own family",
        after=grant(
            "ms-dev-inventory-run-own-task",
            "inventory",
            "task",
            lambda p: pulumi.Output.all(
                svc(p, "inventory").task_role_arn, svc(p, "inventory").execution_role_arn
            ).apply(
                lambda a: [
                    allow(
                        "iam:PassRole",
                        list(a),
                        Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                    ),
                    allow("ecs:RunTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/ms-dev-inventory:*"),
                ]
            ),
        ),
    ),
]
