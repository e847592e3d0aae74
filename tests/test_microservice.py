"""FargateMicroservice: what each service declares, in the real stacks and in focused component runs.

Whole-program properties read the cached offline previews (`preview("dev"|"prod")`); the wiring of
the attachment points (edge, event bus, mesh) is exercised with `run_component` and fake ARNs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from components.cluster import CapacityShare
from components.context import PlatformContext
from components.edge import EdgeListener
from components.envoy import EDGE_PORT
from components.microservice import (
    APP_CONTAINER,
    WILDCARD_RESOURCE_ACTIONS,
    XRAY_CONTAINER,
    AlbAttachment,
    ContainerSecret,
    FargateMicroservice,
    FargateMicroserviceArgs,
    MeshAttachment,
    TaskRuntime,
    target_group_name,
)
from components.platform import PlatformInputs
from model.config import DataConfig, ServiceSizing, parse_stack_config
from model.errors import ConfigError
from model.spec import DynamoStore, PostgresStore, SecretRef, ServiceSpec
from offline.plan import Plan, PlannedResource
from services import load_catalog
from tests.conftest import children_of, only, preview, run_component, single

SERVICE = "microservices:service:FargateMicroservice"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
ECS_SERVICE = "aws:ecs/service:Service"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
FARGATE_SPECS = sorted(s.name for s in load_catalog() if s.kind == "fargate")
PUBLIC_SPECS = sorted(s.name for s in load_catalog() if s.kind == "fargate" and s.is_public)
SENSITIVE_ENV_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)
DATA_ACTION_PREFIXES = ("dynamodb:", "elasticache:", "rds-db:", "rds-data:", "secretsmanager:")

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-a444-555555555555"
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/ms-test-bus"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:ms-test-inventory-queue"


# --- helpers ----------------------------------------------------------------------------------------


def descendants(plan: Plan, urn: str) -> list[PlannedResource]:
    found, frontier = [], [urn]
    while frontier:
        parent = frontier.pop()
        for resource in children_of(plan, parent):
            found.append(resource)
            frontier.append(resource.urn)
    return found


def service_component(plan: Plan, env: str, name: str) -> PlannedResource:
    return only(plan, SERVICE, f"ms-{env}-{name}")


def containers(task_definition: PlannedResource) -> list[dict[str, Any]]:
    return json.loads(task_definition.inputs["containerDefinitions"])


def statements(policy: PlannedResource) -> Iterator[dict[str, Any]]:
    document = json.loads(policy.inputs["policy"])
    yield from document["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_policies(plan: Plan, component: PlannedResource) -> dict[str, PlannedResource]:
    """`task` and `execution` inline policies of a service."""
    policies = [r for r in children_of(plan, component.urn) if r.type == ROLE_POLICY]
    return {p.name.rsplit("-", 1)[-1]: p for p in policies}


def secret_arn(value_from: str) -> str:
    """A `secrets` valueFrom without its `:<json-key>:<stage>:<version>` suffix."""
    return re.sub(r"(:secret:[^:]+)(:.*)?$", r"\1", value_from)


def injected_secret_arns(plan: Plan, component: PlannedResource) -> set[str]:
    """Secrets the service's own task definition injects into any of its containers."""
    task = single((r for r in children_of(plan, component.urn) if r.type == TASK_DEF), "task definition")
    return {secret_arn(s["valueFrom"]) for c in containers(task) for s in c.get("secrets", [])}


def own_data_arns(plan: Plan, component: PlannedResource) -> set[str]:
    """ARNs of the data a service owns: its stores, their users and master secrets, its own secrets."""
    arns: set[str] = set()
    for r in descendants(plan, component.urn):
        if r.type in (
            "aws:dynamodb/table:Table",
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "aws:elasticache/user:User",
            "aws:rds/instance:Instance",
            "aws:secretsmanager/secret:Secret",
        ):
            arns.add(r.outputs["arn"])
        for secret in r.outputs.get("masterUserSecrets") or []:
            arns.add(secret["secretArn"])
    return arns


# --- whole program ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_one_component_per_fargate_spec_with_its_children(env: str) -> None:
    plan = preview(env).plan
    components = plan.of_type(SERVICE)
    assert sorted(c.name for c in components) == [f"ms-{env}-{n}" for n in FARGATE_SPECS]
    for component in components:
        types = [r.type for r in children_of(plan, component.urn)]
        for expected in (
            TASK_DEF,
            ECS_SERVICE,
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:cloudwatch/logGroup:LogGroup",
            "aws:appautoscaling/target:Target",
        ):
            assert types.count(expected) == 1, f"{component.urn}: expected one {expected}, got {types}"
        public = component.name.removeprefix(f"ms-{env}-") in PUBLIC_SPECS
        # prod deploys canary through the ALBs: public services add an ECS infrastructure role, an
        # alternate target group and a test rule per listener; dev rolls.
        shifting = public and env == "prod"
        roles = 3 if shifting else 2
        assert types.count("aws:iam/role:Role") == roles, f"{component.urn}: task + execution roles, got {types}"
        assert types.count("aws:lb/targetGroup:TargetGroup") == (4 if shifting else 2 if public else 0), component.urn
        assert types.count("aws:lb/listenerRule:ListenerRule") == (4 if shifting else 2 if public else 0), component.urn


UNTAGGABLE = (
    "aws:sqs/queuePolicy:QueuePolicy",
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy",
    "aws:cloudwatch/eventTarget:EventTarget",
)
"""Types the data patterns declare inside a service that have no `tags` input in pulumi-aws."""


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_resource_of_a_service_carries_service_and_base_tags(env: str) -> None:
    plan = preview(env).plan
    for name in FARGATE_SPECS:
        for r in descendants(plan, service_component(plan, env, name).urn):
            if not r.custom or r.type in (
                ROLE_POLICY,
                SCALING_POLICY,
                RANDOM_PASSWORD,
                *UNTAGGABLE,
            ):  # types without tags
                continue
            tags = r.inputs.get("tags")
            assert tags, f"{r.urn} has no tags"
            assert tags.get("Service") == name and tags.get("Environment") == env, f"{r.urn}: {tags}"
            assert tags.get("Project") == "microservices", f"{r.urn}: {tags}"


def test_capacity_dev_is_x86_spot_only_prod_is_graviton_on_demand() -> None:
    for env, expected, cpu in (
        ("dev", [{"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1}], "X86_64"),
        ("prod", [{"capacityProvider": "FARGATE", "base": 0, "weight": 1}], "ARM64"),
    ):
        plan = preview(env).plan
        for service in plan.of_type(ECS_SERVICE):
            assert service.inputs["capacityProviderStrategies"] == expected, service.urn
            assert "launchType" not in service.inputs, service.urn
        for task in plan.of_type(TASK_DEF):
            assert task.inputs["runtimePlatform"]["cpuArchitecture"] == cpu, task.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_ecs_service_deployment_and_network_settings(env: str) -> None:
    plan = preview(env).plan
    for name in FARGATE_SPECS:
        component = service_component(plan, env, name)
        service = single((r for r in children_of(plan, component.urn) if r.type == ECS_SERVICE), "ECS service")
        inputs = service.inputs
        assert inputs["name"] == f"ms-{env}-{name}", service.urn
        assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}, service.urn
        assert (inputs["deploymentMinimumHealthyPercent"], inputs["deploymentMaximumPercent"]) == (100, 200)
        assert inputs["propagateTags"] == "SERVICE" and inputs["enableEcsManagedTags"] is True, service.urn
        assert inputs["enableExecuteCommand"] is (env == "dev"), service.urn
        network = inputs["networkConfiguration"]
        assert network["assignPublicIp"] is False, service.urn
        assert network["subnets"] == plan.outputs["privateSubnetIds"], service.urn
        public = name in PUBLIC_SPECS
        assert ("healthCheckGracePeriodSeconds" in inputs) is public, service.urn
        assert len(inputs.get("loadBalancers", [])) == (2 if public else 0), service.urn
        # Tasks start only once their permissions exist and (public) their target groups are routed.
        policies = {p.urn for p in children_of(plan, component.urn) if p.type == ROLE_POLICY}
        assert policies <= set(service.dependencies), f"{service.urn} depends on {service.dependencies}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_task_definition_is_hardened_fargate(env: str) -> None:
    plan = preview(env).plan
    for name in FARGATE_SPECS:
        component = service_component(plan, env, name)
        task = single((r for r in children_of(plan, component.urn) if r.type == TASK_DEF), "task definition")
        inputs = task.inputs
        assert inputs["networkMode"] == "awsvpc" and inputs["requiresCompatibilities"] == ["FARGATE"], task.urn
        cpu = "ARM64" if env == "prod" else "X86_64"
        assert inputs["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": cpu}, task.urn
        defs = {c["name"]: c for c in containers(task)}
        assert {APP_CONTAINER, XRAY_CONTAINER} <= set(defs), task.urn
        app = defs[APP_CONTAINER]
        for sidecar in set(defs) - {APP_CONTAINER, XRAY_CONTAINER}:  # mesh sidecars, when attached
            assert {"containerName": sidecar, "condition": "HEALTHY"} in app["dependsOn"], task.urn
        assert app["user"] not in ("root", "0", "0:0") and app["user"].split(":")[0] != "0", task.urn
        spec = next(s for s in load_catalog() if s.name == name)
        assert app["user"] == spec.run_as_user == "10001:10001", f"{task.urn}: the reference image's user"
        assert app["readonlyRootFilesystem"] is True, task.urn
        assert app["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
        assert {"name": "tmp"} in inputs["volumes"], task.urn
        assert "/health" in " ".join(app["healthCheck"]["command"]), task.urn
        assert app["stopTimeout"] == 30, task.urn
        log = app["logConfiguration"]
        assert log["logDriver"] == "awslogs" and log["options"]["awslogs-group"] == f"/ecs/ms-{env}-{name}"
        assert {"containerName": XRAY_CONTAINER, "condition": "START"} in app["dependsOn"], task.urn
        xray = defs[XRAY_CONTAINER]
        assert xray["image"].startswith("public.ecr.aws/xray/aws-xray-daemon:"), task.urn
        assert xray["essential"] is False and xray["readonlyRootFilesystem"] is True, task.urn
        env_names = {e["name"] for e in app["environment"]}
        assert {"SERVICE_NAME", "ENVIRONMENT", "LOG_FORMAT", "AWS_XRAY_DAEMON_ADDRESS"} <= env_names, task.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_log_groups_have_environment_retention_and_kms(env: str) -> None:
    plan = preview(env).plan
    retention = {"dev": 14, "prod": 365}[env]
    for name in FARGATE_SPECS:
        group = only(plan, "aws:cloudwatch/logGroup:LogGroup", f"ms-{env}-{name}-logs")
        assert group.inputs["name"] == f"/ecs/ms-{env}-{name}", group.urn
        assert group.inputs["retentionInDays"] == retention, group.urn
        assert group.inputs["kmsKeyId"] == plan.outputs["kmsKeyArn"], group.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_plaintext_secret_in_any_container_environment(env: str) -> None:
    plan = preview(env).plan
    services = {r.urn for r in plan.of_type(SERVICE)}
    for task in plan.of_type(TASK_DEF):
        for container in containers(task):
            for entry in container.get("environment", []):
                assert not SENSITIVE_ENV_NAME.search(entry["name"]), (
                    f"{task.urn}: container {container['name']} has a plain environment value "
                    f"{entry['name']}; inject it as a secret"
                )
            for secret in container.get("secrets", []):
                assert secret["valueFrom"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:"), (
                    f"{task.urn}: {secret['name']} is not a Secrets Manager reference: {secret['valueFrom']}"
                )
    # The values of the services' own secrets are put out of band: no version of them is in the program.
    own_secrets = {r.outputs["arn"] for r in plan.of_type("aws:secretsmanager/secret:Secret") if r.parent in services}
    for version in plan.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert version.parent not in services, f"{version.urn}: a secret value in a service's code"
        assert version.inputs.get("secretId") not in own_secrets, f"{version.urn} sets a service secret's value"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_secrets_reference_only_the_services_own_secrets(env: str) -> None:
    plan = preview(env).plan
    for name in FARGATE_SPECS:
        component = service_component(plan, env, name)
        own = own_data_arns(plan, component)
        task = single((r for r in children_of(plan, component.urn) if r.type == TASK_DEF), "task definition")
        app = next(c for c in containers(task) if c["name"] == APP_CONTAINER)
        for secret in app.get("secrets", []):
            arn = secret_arn(secret["valueFrom"])
            assert arn in own, f"{task.urn}: {secret['name']} reads {arn}, which {name} does not own"
    payment = service_component(plan, env, "payment")
    secret = only(plan, "aws:secretsmanager/secret:Secret", f"ms-{env}-payment-payment-provider-api-key")
    assert secret.parent == payment.urn
    assert secret.inputs["kmsKeyId"] == plan.outputs["kmsKeyArn"], secret.urn
    assert "secretString" not in secret.inputs, secret.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_role_policies_are_least_privilege(env: str) -> None:
    plan = preview(env).plan
    all_data = {name: own_data_arns(plan, service_component(plan, env, name)) for name in FARGATE_SPECS}
    # What a service may read: its own data, and the secrets its own task definition injects (e.g. a
    # mesh identity); never another service's.
    readable = {n: all_data[n] | injected_secret_arns(plan, service_component(plan, env, n)) for n in FARGATE_SPECS}
    for name in FARGATE_SPECS:
        component = service_component(plan, env, name)
        others = set().union(*(arns for other, arns in all_data.items() if other != name))
        for kind, policy in role_policies(plan, component).items():
            for statement in statements(policy):
                actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
                assert statement["Effect"] == "Allow", policy.urn
                for action in actions:
                    assert "*" not in action, f"{policy.urn}: action wildcard {action}"
                if "*" in resources:
                    assert set(actions) <= WILDCARD_RESOURCE_ACTIONS, (
                        f"{policy.urn}: {sorted(set(actions) - WILDCARD_RESOURCE_ACTIONS)} granted on '*'"
                    )
                    assert resources == ["*"], policy.urn
                if any(a.startswith(DATA_ACTION_PREFIXES) for a in actions):
                    assert set(resources) <= readable[name], (
                        f"{policy.urn} ({kind}): {statement['Sid']} names {sorted(set(resources) - readable[name])}, "
                        f"not {name}'s own data"
                    )
                assert not set(resources) & others, f"{policy.urn}: grants on another service's data"


def test_grants_match_what_each_spec_declares() -> None:
    plan = preview("dev").plan

    def granted(name: str, kind: str) -> dict[str, list[str]]:
        policy = role_policies(plan, service_component(plan, "dev", name))[kind]
        return {s["Sid"]: sorted(as_list(s["Action"])) for s in statements(policy)}

    order = granted("order", "task")
    assert "dynamodb:Query" in order["OwnOrdersTableItems"]
    # order publishes through its outbox (the pipe's role puts its events): no PutEvents of its own.
    assert "PublishOwnEvents" not in order
    assert granted("user", "task")["PublishOwnEvents"] == ["events:PutEvents"]
    assert "ConsumeOwnQueues" not in order, "order consumes no queue"
    payment = granted("payment", "task")
    assert payment["OwnPaymentCacheConnect"] == ["elasticache:Connect"]
    inventory = granted("inventory", "task")
    assert inventory["ConsumeOwnQueues"] == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    queue = only(plan, "aws:sqs/queue:Queue", "ms-dev-inventory-queue")
    consume = next(
        s
        for s in statements(role_policies(plan, service_component(plan, "dev", "inventory"))["task"])
        if s["Sid"] == "ConsumeOwnQueues"
    )
    assert as_list(consume["Resource"]) == [queue.outputs["arn"]], consume
    # Password auth to PostgreSQL: the master secret is read by ECS, not by the app (no rds-db:connect).
    user_exec = {
        s["Sid"]: s for s in statements(role_policies(plan, service_component(plan, "dev", "user"))["execution"])
    }
    db = only(plan, "aws:rds/instance:Instance", "ms-dev-user-users-db")
    assert db.outputs["masterUserSecrets"][0]["secretArn"] in as_list(user_exec["OwnSecrets"]["Resource"])
    assert "rds-db:connect" not in json.dumps(granted("user", "task"))


def test_ecs_exec_permissions_only_where_exec_is_enabled() -> None:
    for env, enabled in (("dev", True), ("prod", False)):
        plan = preview(env).plan
        for name in FARGATE_SPECS:
            policy = role_policies(plan, service_component(plan, env, name))["task"]
            actions = {a for s in statements(policy) for a in as_list(s["Action"])}
            assert ("ssmmessages:OpenDataChannel" in actions) is enabled, f"{policy.urn}: {sorted(actions)}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_service_security_group_admits_only_its_load_balancers(env: str) -> None:
    plan = preview(env).plan
    groups = plan.of_type("aws:ec2/securityGroup:SecurityGroup")
    edge_groups = {r.urn for r in groups if r.name in (f"ms-{env}-alb-sg", f"ms-{env}-api-alb-sg")}
    assert len(edge_groups) == 2, edge_groups
    service_groups = {r.urn for r in groups if plan.by_urn()[r.parent].type == SERVICE}
    for name in FARGATE_SPECS:
        component = service_component(plan, env, name)
        sg = single(
            (r for r in children_of(plan, component.urn) if r.type == "aws:ec2/securityGroup:SecurityGroup"), "group"
        )
        ingress = [r for r in plan.of_type(INGRESS) if r.property_dependencies.get("securityGroupId") == [sg.urn]]
        assert not any("cidrIpv4" in r.inputs or "cidrIpv6" in r.inputs for r in ingress), f"{sg.urn}: CIDR ingress"
        from_edge = [r for r in ingress if set(r.property_dependencies["referencedSecurityGroupId"]) & edge_groups]
        if name in PUBLIC_SPECS:
            tg_ports = {
                r.inputs["port"] for r in children_of(plan, component.urn) if r.type == "aws:lb/targetGroup:TargetGroup"
            }
            assert len(from_edge) == 2, f"{sg.urn}: {[r.urn for r in from_edge]}"
            assert {(r.inputs["fromPort"], r.inputs["toPort"]) for r in from_edge} == {(p, p) for p in tg_ports}
        else:
            assert from_edge == [], f"{sg.urn} (private service) admits a load balancer"
        # Anything else is east-west mesh traffic: only from other services' groups.
        for rule in (r for r in ingress if r not in from_edge):
            sources = set(rule.property_dependencies["referencedSecurityGroupId"])
            assert sources <= service_groups - {sg.urn}, f"{rule.urn} admits {sources}"
        egress = [r for r in plan.of_type(EGRESS) if r.property_dependencies.get("securityGroupId") == [sg.urn]]
        https = [r for r in egress if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
        assert [(r.inputs["fromPort"], r.inputs["toPort"]) for r in https] == [(443, 443)], sg.urn


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_autoscaling_and_alarms(env: str) -> None:
    plan = preview(env).plan
    sizing = {"dev": {"order": (1, 2)}, "prod": {"order": (3, 20), "user": (3, 12)}}[env]
    for name, (low, high) in sizing.items():
        target = only(plan, "aws:appautoscaling/target:Target", f"ms-{env}-{name}-scaling")
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (low, high), target.urn
        assert target.inputs["resourceId"].startswith("service/") and target.inputs["resourceId"].endswith(
            f"/ms-{env}-{name}"
        ), target.urn
    order = service_component(plan, env, "order")
    policies = {r.name: r for r in children_of(plan, order.urn) if r.type == SCALING_POLICY}
    metrics = sorted(
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]["predefinedMetricType"]
        for p in policies.values()
    )
    assert metrics == [
        "ALBRequestCountPerTarget",
        "ALBRequestCountPerTarget",
        "ECSServiceAverageCPUUtilization",
        "ECSServiceAverageMemoryUtilization",
    ]
    requests = policies[f"ms-{env}-order-public-requests-scaling"]
    label = requests.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
        "resourceLabel"
    ]
    alb = only(plan, "aws:lb/loadBalancer:LoadBalancer", f"ms-{env}-alb")
    tg = only(plan, "aws:lb/targetGroup:TargetGroup", f"ms-{env}-order-public-tg")
    assert label == f"{alb.outputs['arnSuffix']}/{tg.outputs['arnSuffix']}", requests.urn
    alarms = {r.name.removeprefix(f"ms-{env}-order-") for r in children_of(plan, order.urn) if r.type == ALARM}
    assert alarms == {
        "cpu-high",
        "memory-high",
        "tasks-below-desired",
        "public-5xx-rate",
        "public-latency-p99",
        "api-5xx-rate",
        "api-latency-p99",
    }
    running = only(plan, ALARM, f"ms-{env}-order-tasks-below-desired")
    metrics_used = {q["metric"]["metricName"] for q in running.inputs["metricQueries"] if "metric" in q}
    assert metrics_used == {"RunningTaskCount", "DesiredTaskCount"}, running.urn
    assert all(
        q["metric"]["namespace"] == "ECS/ContainerInsights" for q in running.inputs["metricQueries"] if "metric" in q
    )
    payment = {r.name for r in children_of(plan, service_component(plan, env, "payment").urn) if r.type == ALARM}
    assert not any("5xx" in n for n in payment), "a private service has no target-group alarms"


def test_listener_rules_route_each_public_prefix() -> None:
    plan = preview("dev").plan
    rule = only(plan, "aws:lb/listenerRule:ListenerRule", "ms-dev-user-public-route-users")
    assert rule.inputs["conditions"] == [{"pathPattern": {"values": ["/users", "/users/*"]}}], rule.urn
    tg = only(plan, "aws:lb/targetGroup:TargetGroup", "ms-dev-user-public-tg")
    assert rule.inputs["actions"] == [{"type": "forward", "targetGroupArn": tg.outputs["arn"]}], rule.urn
    # The app port, or the Envoy sidecar's TLS edge port once the mesh is attached.
    assert tg.inputs["targetType"] == "ip" and tg.inputs["port"] in (8080, EDGE_PORT), tg.urn
    assert tg.inputs["healthCheck"]["path"] == "/health", tg.urn
    assert len(tg.inputs["name"]) <= 32, tg.urn


def test_missing_image_is_a_one_line_config_error() -> None:
    config = parse_stack_config("dev", {"environment": "dev", "region": "us-east-1"})
    spec = ServiceSpec(name="ledger", description="no default image")
    with pytest.raises(ConfigError) as caught:
        PlatformInputs.resolve("dev", config, [spec])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("stack 'dev': config microservices:services.ledger.image: is required"), message


def test_target_group_names_fit_and_change_with_the_port() -> None:
    longest = target_group_name("staging", "a" * 22, "public", 8080, "HTTP")
    assert len(longest) <= 32
    assert target_group_name("dev", "user", "public", 8080, "HTTP") != target_group_name(
        "dev", "user", "public", 15444, "HTTPS"
    )


# --- focused component runs -------------------------------------------------------------------------


RUNTIME = TaskRuntime(
    cpu_architecture="X86_64",
    capacity=[CapacityShare("FARGATE_SPOT", 1)],
    log_retention_days=7,
    tracing=True,
    container_insights=True,
    execute_command=False,
)


def make_args(spec: ServiceSpec, **overrides: Any) -> FargateMicroserviceArgs:
    args = FargateMicroserviceArgs(
        spec=spec,
        sizing=ServiceSizing(image=spec.image or "public.ecr.aws/docker/library/busybox:1.37", cpu=256, memory=512),
        runtime=RUNTIME,
        store_settings=DataConfig(),
        vpc_id="vpc-0123456789abcdef0",
        private_subnet_ids=["subnet-0a", "subnet-0b"],
        isolated_subnet_ids=["subnet-1a", "subnet-1b"],
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/ms-test",
        cluster_name="ms-test",
    )
    return replace(args, **overrides)


CONTEXT = PlatformContext(
    environment="test",
    account_id="123456789012",
    region="us-east-1",
    partition="aws",
    tags={"Project": "microservices", "Environment": "test"},
).with_key(KEY_ARN)


SPEC = ServiceSpec(
    name="ledger",
    description="test service",
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/ledger:1.0",
    public_paths=("/ledger",),
    data_stores=(DynamoStore(name="ledger-table", hash_key="id"),),
    publishes=("LedgerPosted",),
    secrets=(SecretRef(env_name="LEDGER_SIGNING_KEY", description="signing key"),),
)


def edge_attachment(**overrides: Any) -> AlbAttachment:
    return AlbAttachment(
        listeners=[
            EdgeListener(
                "public",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/ms-test-alb/abc/def",
                "sg-0a1b2c3d4e5f60718",
                "app/ms-test-alb/0123456789abcdef",
            )
        ],
        rule_priorities={"/ledger": 150},
        **overrides,
    )


def test_attachments_wire_grants_routes_and_mesh_sidecars() -> None:
    envoy = {
        "name": "envoy",
        "image": "public.ecr.aws/envoyproxy/envoy:v1.34.1",
        "essential": True,
        "healthCheck": {"command": ["CMD-SHELL", "true"]},
        "secrets": [
            {"name": "MESH_CERT_CHAIN", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mesh-ledger"}
        ],
    }
    mesh = MeshAttachment(
        sidecars=[envoy],
        app_secrets=[
            ContainerSecret("UPSTREAM_CA", "arn:aws:secretsmanager:us-east-1:123456789012:secret:mesh-ledger:ca::")
        ],
        app_environment={"INVENTORY_URL": "http://127.0.0.1:15001"},
        secret_arns=["arn:aws:secretsmanager:us-east-1:123456789012:secret:mesh-ledger"],
        registry_arn="arn:aws:servicediscovery:us-east-1:123456789012:service/srv-0123456789abcdef",
        redeploy_triggers={"certificate": "v2"},
    )
    args = make_args(
        SPEC,
        alb=edge_attachment(target_port=15444, target_protocol="HTTPS", target_container_name="envoy"),
        publish_bus_arn=BUS_ARN,
        consume_queue_arns=[QUEUE_ARN],
        mesh=mesh,
    )
    plan = run_component(lambda: FargateMicroservice("ms-test-ledger", args, CONTEXT))

    tg = only(plan, "aws:lb/targetGroup:TargetGroup")
    assert (tg.inputs["port"], tg.inputs["protocol"]) == (15444, "HTTPS"), tg.urn
    rule = only(plan, "aws:lb/listenerRule:ListenerRule")
    assert rule.inputs["priority"] == 150, rule.urn
    service = only(plan, ECS_SERVICE)
    assert service.inputs["loadBalancers"] == [
        {"targetGroupArn": tg.outputs["arn"], "containerName": "envoy", "containerPort": 15444}
    ], service.urn
    assert service.inputs["serviceRegistries"] == {"registryArn": mesh.registry_arn}, service.urn
    assert service.inputs["triggers"] == {"certificate": "v2"} and service.inputs["forceNewDeployment"] is True
    assert rule.urn in service.dependencies, "the target group must be routed before the service registers tasks"
    ports = sorted((r.inputs["fromPort"], r.inputs["referencedSecurityGroupId"]) for r in plan.of_type(INGRESS))
    assert ports == [(15444, "sg-0a1b2c3d4e5f60718")], "only the load balancer reaches the edge port"

    task = only(plan, TASK_DEF)
    defs = {c["name"]: c for c in containers(task)}
    assert set(defs) == {APP_CONTAINER, XRAY_CONTAINER, "envoy"}
    assert {"containerName": "envoy", "condition": "HEALTHY"} in defs[APP_CONTAINER]["dependsOn"]
    app_env = {e["name"]: e["value"] for e in defs[APP_CONTAINER]["environment"]}
    assert app_env["INVENTORY_URL"] == "http://127.0.0.1:15001"
    assert app_env["EVENT_BUS_ARN"] == BUS_ARN and app_env["EVENT_SOURCE"] == "microservices.ledger"
    assert app_env["EVENT_QUEUE_URLS"] == "https://sqs.us-east-1.amazonaws.com/123456789012/ms-test-inventory-queue"
    secret_names = {s["name"] for s in defs[APP_CONTAINER]["secrets"]}
    assert secret_names == {"LEDGER_SIGNING_KEY", "UPSTREAM_CA"}

    policies = {p.name.rsplit("-", 1)[-1]: {s["Sid"]: s for s in statements(p)} for p in plan.of_type(ROLE_POLICY)}
    task_policy, exec_policy = policies["task"], policies["execution"]
    assert task_policy["PublishOwnEvents"]["Resource"] == [BUS_ARN]
    assert task_policy["ConsumeOwnQueues"]["Resource"] == [QUEUE_ARN]
    assert task_policy["DecryptOwnQueues"] == {
        "Sid": "DecryptOwnQueues",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [KEY_ARN],
        "Condition": {"StringEquals": {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}},
    }
    assert "EcsExecChannels" not in task_policy, "ECS Exec is off in this config"
    secret = only(plan, "aws:secretsmanager/secret:Secret")
    assert sorted(exec_policy["OwnSecrets"]["Resource"]) == sorted([secret.outputs["arn"], *mesh.secret_arns])
    # A private ECR image: login needs "*", the pull is limited to that repository.
    assert exec_policy["EcrLogin"]["Resource"] == ["*"]
    assert exec_policy["PullOwnImages"]["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/ledger"]


def test_tracing_off_drops_the_daemon_and_its_grant() -> None:
    spec = ServiceSpec(name="quiet", description="no tracing", image="public.ecr.aws/docker/library/busybox:1.37")
    args = make_args(spec, runtime=replace(RUNTIME, tracing=False))
    plan = run_component(lambda: FargateMicroservice("ms-test-quiet", args, CONTEXT))
    assert [c["name"] for c in containers(only(plan, TASK_DEF))] == [APP_CONTAINER]
    assert plan.of_type(ROLE_POLICY) and all(
        "task" not in p.name.rsplit("-", 1)[-1] for p in plan.of_type(ROLE_POLICY)
    ), "with nothing to grant, the task role has no policy at all"
    assert "AWS_XRAY_DAEMON_ADDRESS" not in json.dumps(containers(only(plan, TASK_DEF)))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alb": "no-paths"}, "has no public_paths"),
        ({"mesh": MeshAttachment(sidecars=[{"name": "envoy", "image": "x"}])}, "needs a healthCheck"),
        ({"sizing": ServiceSizing()}, "sizing.image is not set"),
    ],
)
def test_miswired_attachments_fail_fast(overrides: dict[str, Any], message: str) -> None:
    spec = ServiceSpec(name="quiet", description="private", image="public.ecr.aws/docker/library/busybox:1.37")
    if overrides.get("alb") == "no-paths":
        overrides = {"alb": edge_attachment()}
    args = make_args(spec, **overrides)
    with pytest.raises(ValueError, match=message):
        run_component(lambda: FargateMicroservice("ms-test-quiet", args, CONTEXT))


def test_postgres_owner_gets_connection_settings_and_secret_references() -> None:
    spec = ServiceSpec(
        name="books",
        description="owns a database",
        image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
        data_stores=(PostgresStore(name="books-db", database_name="books"),),
    )
    plan = run_component(lambda: FargateMicroservice("ms-test-books", make_args(spec), CONTEXT))
    app = next(c for c in containers(only(plan, TASK_DEF)) if c["name"] == APP_CONTAINER)
    env = {e["name"]: e["value"] for e in app["environment"]}
    db = only(plan, "aws:rds/instance:Instance")
    assert env["BOOKS_DB_HOST"] == db.outputs["address"] and env["BOOKS_DB_PORT"] == "5432"
    master = db.outputs["masterUserSecrets"][0]["secretArn"]
    assert {s["name"]: s["valueFrom"] for s in app["secrets"]} == {
        "BOOKS_DB_USERNAME": f"{master}:username::",
        "BOOKS_DB_PASSWORD": f"{master}:password::",
    }
    egress = [r for r in plan.of_type(EGRESS) if r.inputs.get("fromPort") == 5432]
    db_sg = only(plan, "aws:ec2/securityGroup:SecurityGroup", "ms-test-books-books-db-sg")
    assert [r.property_dependencies["referencedSecurityGroupId"] for r in egress] == [[db_sg.urn]]
