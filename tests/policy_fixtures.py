"""Fakes for the policy pack's unit tests: resources shaped like pulumi_policy's arguments.

`Stack.add()` builds a resource the way the engine hands it to a policy: a URN whose qualified type
names the parent chain, props wrapped in pulumi_policy's unknown-checking proxy (so a rule that
reads an unknown value raises UnknownValueError exactly as in a real preview), and parent /
dependencies / property_dependencies pointing at other fakes. `platform()` returns a small but
complete stack that every stack rule accepts; tests mutate copies of it to trip one rule at a time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

UNKNOWN = UNKNOWN_STRING_VALUE
ACCOUNT = "123456789012"
REGION = "eu-west-1"
MESH_PORT = 15443
EDGE_PORT = 15444


@dataclass(eq=False)
class FakeResource:
    """The attributes of pulumi_policy's ResourceValidationArgs (resource rules) and PolicyResource
    (stack rules)."""

    resource_type: str
    props: Mapping[str, Any]
    urn: str
    name: str
    parent: FakeResource | None = None
    dependencies: list[FakeResource] = field(default_factory=list)
    property_dependencies: dict[str, list[FakeResource]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def update(self, **changes: Any) -> FakeResource:
        """Change props in place (a value of None removes the key)."""
        self.raw.update(changes)
        self.raw = {k: v for k, v in self.raw.items() if v is not None}
        self.props = unknown_checking_proxy(copy.deepcopy(self.raw))
        return self


def _qualified_type(resource_type: str, parent: FakeResource | None) -> str:
    if parent is None or parent.resource_type == "pulumi:pulumi:Stack":
        return resource_type
    return parent.urn.split("::")[2] + "$" + resource_type


def make(
    resource_type: str,
    name: str,
    props: Mapping[str, Any] | None = None,
    *,
    parent: FakeResource | None = None,
    deps: Mapping[str, list[FakeResource]] | None = None,
    depends_on: list[FakeResource] | None = None,
) -> FakeResource:
    """One fake resource (props are deep-copied and proxied like the engine's)."""
    prop_deps = {k: list(v) for k, v in (deps or {}).items()}
    all_deps = [*(depends_on or []), *(d for v in prop_deps.values() for d in v)]
    return FakeResource(
        resource_type=resource_type,
        props=unknown_checking_proxy(copy.deepcopy(dict(props or {}))),
        raw=copy.deepcopy(dict(props or {})),
        urn=f"urn:pulumi:dev::microservices::{_qualified_type(resource_type, parent)}::{name}",
        name=name,
        parent=parent,
        dependencies=all_deps,
        property_dependencies=prop_deps,
    )


def tags(env: str = "dev", service: str | None = None, **extra: str) -> dict[str, str]:
    result = {"Environment": env, "Project": "microservices", "ManagedBy": "pulumi", **extra}
    if service:
        result["Service"] = service
    return result


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def policy_document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str] | str, resources: list[str] | str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


# --------------------------------------------------------------------------------------------------
# Envoy bootstrap and task definitions, shaped like the ServiceMesh component's.
# --------------------------------------------------------------------------------------------------
DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
CERT = {"certificate_chain": {"environment_variable": "MESH_CERT_CHAIN"}, "private_key": {"environment_variable": "K"}}


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _validation(sans: list[str]) -> dict[str, Any]:
    return {
        "trusted_ca": {"environment_variable": "MESH_CA_BUNDLE"},
        "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": s}} for s in sans],
    }


def _listener(name: str, address: str, port: int, tls: dict[str, Any] | None) -> dict[str, Any]:
    chain: dict[str, Any] = {"filters": [{"name": "envoy.filters.network.http_connection_manager"}]}
    if tls is not None:
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": tls}
    return {"name": name, "address": _socket(address, port), "filter_chains": [chain]}


def bootstrap(service: str, *, callers: list[str], upstreams: list[str], public: bool = False) -> dict[str, Any]:
    """A static Envoy v3 bootstrap with strict mTLS, like components/envoy.py builds."""
    spiffe = "spiffe://microservices.internal/dev/{}".format
    listeners = []
    if callers:
        inbound_tls = {
            "@type": DOWNSTREAM,
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificates": [CERT],
                "validation_context": _validation([spiffe(c) for c in callers]),
            },
        }
        listeners.append(_listener("inbound_mesh", "0.0.0.0", MESH_PORT, inbound_tls))
    if public:
        edge_tls = {
            "@type": DOWNSTREAM,
            "require_client_certificate": False,
            "common_tls_context": {"tls_certificates": [CERT]},
        }
        listeners.append(_listener("edge", "0.0.0.0", EDGE_PORT, edge_tls))
    clusters: list[dict[str, Any]] = [
        {
            "name": "local_app",
            "load_assignment": {
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket("127.0.0.1", 8080)}}]}]
            },
        },
    ]
    for i, upstream in enumerate(upstreams):
        listeners.append(_listener(f"outbound_{upstream}", "127.0.0.1", 15001 + i, None))
        upstream_tls = {
            "@type": UPSTREAM,
            "sni": f"{upstream}.dev.microservices.internal",
            "common_tls_context": {"tls_certificates": [CERT], "validation_context": _validation([spiffe(upstream)])},
        }
        clusters.append(
            {
                "name": f"upstream_{upstream}",
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": upstream_tls},
                "load_assignment": {
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {"endpoint": {"address": _socket(f"{upstream}.dev.microservices.internal", MESH_PORT)}}
                            ]
                        }
                    ]
                },
            }
        )
    return {
        "node": {"id": f"dev.{service}", "cluster": service},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def log_configuration(group: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": {"awslogs-group": group, "awslogs-region": REGION}}


def container_definitions(service: str, envoy_bootstrap: Mapping[str, Any] | None, **app: Any) -> str:
    """The JSON `containerDefinitions` of a service task: app container (+ overrides) and envoy."""
    app_container = {
        "name": "app",
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{service}:1.0.0",
        "essential": True,
        "readonlyRootFilesystem": True,
        "logConfiguration": log_configuration(f"/microservices/dev/{service}"),
        "environment": [{"name": "LOG_LEVEL", "value": "info"}],
        "secrets": [{"name": "API_TOKEN", "valueFrom": arn("secretsmanager", f"secret:{service}-api-AbCdEf")}],
        **app,
    }
    containers = [app_container]
    if envoy_bootstrap is not None:
        containers.append(
            {
                "name": "envoy",
                "image": "envoyproxy/envoy:v1.34.1",
                "essential": True,
                "readonlyRootFilesystem": True,
                "command": ["--config-yaml", json.dumps(envoy_bootstrap)],
                "logConfiguration": log_configuration(f"/microservices/dev/{service}"),
            }
        )
    return json.dumps(containers)


# --------------------------------------------------------------------------------------------------
# A whole compliant platform.
# --------------------------------------------------------------------------------------------------
class Stack:
    """An ordered collection of fakes with lookup by name."""

    def __init__(self) -> None:
        self.resources: list[FakeResource] = []
        self.root = make("pulumi:pulumi:Stack", "microservices-dev")
        self.resources.append(self.root)

    def add(
        self,
        resource_type: str,
        name: str,
        props: Mapping[str, Any] | None = None,
        *,
        parent: FakeResource | None = None,
        deps: Mapping[str, list[FakeResource]] | None = None,
        depends_on: list[FakeResource] | None = None,
    ) -> FakeResource:
        r = make(resource_type, name, props, parent=parent or self.root, deps=deps, depends_on=depends_on)
        self.resources.append(r)
        return r

    def __getitem__(self, name: str) -> FakeResource:
        return next(r for r in self.resources if r.name == name)


SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
FARGATE = "microservices:service:FargateMicroservice"


def add_service(
    stack: Stack, name: str, *, callers: list[str], upstreams: list[str], public: bool = False
) -> FakeResource:
    """A FargateMicroservice with its security group, roles, policy and task definition."""
    service = stack.add(FARGATE, name)
    sg = stack.add(SG, f"{name}-sg", {"description": f"{name} tasks", "tags": tags(service=name)}, parent=service)
    stack.add(ROLE, f"{name}-task-role", {"assumeRolePolicy": "{}", "tags": tags(service=name)}, parent=service)
    stack.add(
        TASK_DEFINITION,
        f"{name}-task",
        {
            "family": f"dev-{name}",
            "containerDefinitions": container_definitions(
                name, bootstrap(name, callers=callers, upstreams=upstreams, public=public)
            ),
            "tags": tags(service=name),
        },
        parent=service,
    )
    stack.add(
        "aws:ecs/service:Service",
        f"{name}-service",
        {"desiredCount": 2, "tags": tags(service=name)},
        parent=service,
        deps={"taskDefinition": [stack[f"{name}-task"]], "networkConfiguration": [sg]},
    )
    return service


def platform() -> Stack:
    """orders (DynamoDB, calls payment and inventory), payment (Redis), inventory (RDS PostgreSQL),
    an Edge with a public ALB + WAF, and a network with an awsx VPC and its flow log."""
    s = Stack()
    network = s.add("microservices:network:Network", "network")
    vpc = s.add("awsx:ec2:Vpc", "vpc", {"vpcId": "vpc-0abc", "tags": tags()}, parent=network)
    s.add(
        "aws:ec2/flowLog:FlowLog",
        "vpc-flow-log",
        {"trafficType": "ALL", "tags": tags()},
        parent=network,
        deps={"vpcId": [vpc]},
    )

    edge = s.add("microservices:edge:Edge", "edge")
    alb_sg = s.add(SG, "alb-sg", {"description": "public ALB", "tags": tags()}, parent=edge)
    s.add(
        INGRESS,
        "alb-https",
        {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp"},
        parent=edge,
        deps={"securityGroupId": [alb_sg]},
    )
    s.add(
        INGRESS,
        "alb-http",
        {"cidrIpv4": "0.0.0.0/0", "fromPort": 80, "toPort": 80, "ipProtocol": "tcp"},
        parent=edge,
        deps={"securityGroupId": [alb_sg]},
    )
    alb = s.add(
        "aws:lb/loadBalancer:LoadBalancer",
        "alb",
        {
            "loadBalancerType": "application",
            "internal": False,
            "dropInvalidHeaderFields": True,
            "accessLogs": {"enabled": True, "bucket": "dev-alb-logs"},
            "arn": arn("elasticloadbalancing", "loadbalancer/app/alb/1"),
            "tags": tags(),
        },
        parent=edge,
        deps={"securityGroups": [alb_sg]},
    )
    acl = s.add("aws:wafv2/webAcl:WebAcl", "waf", {"scope": "REGIONAL", "tags": tags()}, parent=edge)
    s.add(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "waf-alb",
        {},
        parent=edge,
        deps={"resourceArn": [alb], "webAclArn": [acl]},
    )

    orders = add_service(s, "orders", callers=[], upstreams=["payment", "inventory"], public=True)
    payment = add_service(s, "payment", callers=["orders"], upstreams=[])
    inventory = add_service(s, "inventory", callers=["orders"], upstreams=[])
    for callee in ("payment", "inventory"):
        s.add(
            INGRESS,
            f"{callee}-from-orders",
            {"fromPort": MESH_PORT, "toPort": MESH_PORT, "ipProtocol": "tcp"},
            parent=s[callee],
            deps={"securityGroupId": [s[f"{callee}-sg"]], "referencedSecurityGroupId": [s["orders-sg"]]},
        )
    s.add(
        INGRESS,
        "orders-from-alb",
        {"fromPort": EDGE_PORT, "toPort": EDGE_PORT, "ipProtocol": "tcp"},
        parent=orders,
        deps={"securityGroupId": [s["orders-sg"]], "referencedSecurityGroupId": [alb_sg]},
    )

    # orders owns a DynamoDB table; its task role may use it.
    table_store = s.add("microservices:data:DynamoTable", "orders-data", parent=orders)
    table = s.add(
        "aws:dynamodb/table:Table",
        "orders-table",
        {
            "name": "dev-orders",
            "arn": arn("dynamodb", "table/dev-orders"),
            "serverSideEncryption": {"enabled": True},
            "pointInTimeRecovery": {"enabled": True},
            "tags": tags(service="orders"),
        },
        parent=table_store,
    )
    s.add(
        ROLE_POLICY,
        "orders-task-policy",
        {
            "policy": policy_document(
                allow(
                    ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                    [arn("dynamodb", "table/dev-orders"), arn("dynamodb", "table/dev-orders/index/*")],
                ),
            )
        },
        parent=orders,
        deps={"role": [s["orders-task-role"]], "policy": [table]},
    )

    # payment owns a Redis replication group reachable from its own tasks only.
    cache_store = s.add("microservices:data:RedisCache", "payment-data", parent=payment)
    cache_sg = s.add(
        SG, "payment-cache-sg", {"description": "payment cache", "tags": tags(service="payment")}, parent=cache_store
    )
    s.add(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "payment-cache",
        {
            "replicationGroupId": "dev-payment",
            "atRestEncryptionEnabled": True,
            "transitEncryptionEnabled": True,
            "transitEncryptionMode": "required",
            "tags": tags(service="payment"),
        },
        parent=cache_store,
        deps={"securityGroupIds": [cache_sg]},
    )
    s.add(
        INGRESS,
        "payment-cache-from-payment",
        {"fromPort": 6379, "toPort": 6379, "ipProtocol": "tcp"},
        parent=cache_store,
        deps={"securityGroupId": [cache_sg], "referencedSecurityGroupId": [s["payment-sg"]]},
    )

    # inventory owns an RDS instance whose credentials RDS keeps in Secrets Manager.
    db_store = s.add("microservices:data:PostgresDatabase", "inventory-data", parent=inventory)
    db_sg = s.add(
        SG, "inventory-db-sg", {"description": "inventory db", "tags": tags(service="inventory")}, parent=db_store
    )
    db_secret = arn("secretsmanager", "secret:rds!db-1234abcd-AbCdEf")
    s.add(
        "aws:rds/instance:Instance",
        "inventory-db",
        {
            "identifier": "dev-inventory",
            "arn": arn("rds", "db:dev-inventory"),
            "storageEncrypted": True,
            "manageMasterUserPassword": True,
            "masterUserSecrets": [{"secretArn": db_secret, "secretStatus": "active"}],
            "tags": tags(service="inventory"),
        },
        parent=db_store,
        deps={"vpcSecurityGroupIds": [db_sg]},
    )
    s.add(
        INGRESS,
        "inventory-db-from-inventory",
        {"fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"},
        parent=db_store,
        deps={"securityGroupId": [db_sg], "referencedSecurityGroupId": [s["inventory-sg"]]},
    )
    s.add(
        ROLE_POLICY,
        "inventory-execution-policy",
        {"policy": policy_document(allow("secretsmanager:GetSecretValue", db_secret))},
        parent=inventory,
        deps={"role": [s["inventory-task-role"]]},
    )
    _add_platform_services(s)
    return s


def tls_only(resource_arn: str, action: str) -> str:
    return policy_document(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": action,
            "Resource": resource_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def _add_platform_services(s: Stack) -> None:
    """Cluster, listeners, logs, the event bus with its queues and topic, the notification Lambda, the API."""
    edge = s["edge"]
    s.add(
        "aws:ecs/cluster:Cluster",
        "cluster",
        {"settings": [{"name": "containerInsights", "value": "enhanced"}], "tags": tags()},
        parent=s.add("microservices:cluster:Cluster", "cluster"),
    )
    for service in ("orders", "payment", "inventory"):
        s.add(
            "aws:cloudwatch/logGroup:LogGroup",
            f"{service}-logs",
            {"retentionInDays": 14, "tags": tags(service=service)},
            parent=s[service],
        )
    s.add(
        "aws:lb/listener:Listener",
        "alb-https",
        {
            "protocol": "HTTPS",
            "port": 443,
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "certificateArn": arn("acm", "certificate/abc"),
            "defaultActions": [{"type": "fixed-response", "fixedResponse": {"statusCode": "404"}}],
        },
        parent=edge,
        deps={"loadBalancerArn": [s["alb"]]},
    )
    s.add(
        "aws:lb/listener:Listener",
        "alb-http",
        {
            "protocol": "HTTP",
            "port": 80,
            "defaultActions": [
                {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
            ],
        },
        parent=edge,
        deps={"loadBalancerArn": [s["alb"]]},
    )
    s.add(
        "aws:apigatewayv2/stage:Stage",
        "api-stage",
        {
            "name": "$default",
            "accessLogSettings": {
                "destinationArn": arn("logs", "log-group:/api"),
                "format": '{"id":"$context.requestId"}',
            },
            "defaultRouteSettings": {"throttlingRateLimit": 100, "throttlingBurstLimit": 200},
            "tags": tags(),
        },
        parent=edge,
    )

    bus = s.add("microservices:events:EventBus", "events")
    s.add(
        "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
        "bus-policy",
        {
            "eventBusName": "dev-events",
            "policy": policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "events:PutEvents",
                    "Resource": arn("events", "event-bus/dev-events"),
                }
            ),
        },
        parent=bus,
    )
    dlq = s.add(
        "aws:sqs/queue:Queue",
        "inventory-orders-dlq",
        {
            "sqsManagedSseEnabled": True,
            "url": "https://sqs/dlq",
            "arn": arn("sqs", "inventory-orders-dlq"),
            "tags": tags(),
        },
        parent=bus,
    )
    queue = s.add(
        "aws:sqs/queue:Queue",
        "inventory-orders",
        {
            "kmsMasterKeyId": "alias/dev",
            "url": "https://sqs/q",
            "redrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn("sqs", "inventory-orders-dlq"), "maxReceiveCount": 5}
            ),
            "tags": tags(),
        },
        parent=bus,
        deps={"redrivePolicy": [dlq]},
    )
    for q in (dlq, queue):
        s.add(
            "aws:sqs/queuePolicy:QueuePolicy",
            f"{q.name}-policy",
            {"policy": tls_only(arn("sqs", q.name), "sqs:*")},
            parent=bus,
            deps={"queueUrl": [q]},
        )
    topic = s.add("aws:sns/topic:Topic", "order-events", {"kmsMasterKeyId": "alias/dev", "tags": tags()}, parent=bus)
    s.add(
        "aws:sns/topicPolicy:TopicPolicy",
        "order-events-policy",
        {"policy": tls_only(arn("sns", "order-events"), "sns:Publish")},
        parent=bus,
        deps={"arn": [topic]},
    )

    notification = s.add("microservices:notification:NotificationFunction", "notification")
    function = s.add(
        "aws:lambda/function:Function",
        "notification-fn",
        {"tracingConfig": {"mode": "Active"}, "tags": tags(service="notification")},
        parent=notification,
    )
    s.add(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "notification-invoke",
        {"destinationConfig": {"onFailure": {"destination": arn("sqs", "notification-dlq")}}},
        parent=notification,
        deps={"functionName": [function]},
    )
    s.add(
        "aws:secretsmanager/secret:Secret",
        "orders-api-token",
        {"kmsKeyId": arn("kms", "key/abc"), "tags": tags(service="orders")},
        parent=s["orders"],
    )
