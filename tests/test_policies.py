"""Unit tests of the CrossGuard pack (policies/): for every policy a compliant case and one failing case per
property it checks, asserting the exact violation message. Rules are pure functions over fakes shaped like
pulumi_policy's arguments (tests/policy_fixtures.py), so no engine runs here; a few tests go through the real
pulumi_policy wrappers to check what the engine receives."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from guardrails import (
    baseline,
    containers,
    data_stores,
    deployments,
    edge,
    exceptions,
    identity,
    mesh,
    messaging,
    network,
    observability,
    ownership,
    serverless,
)
from guardrails.core import Finding, ResourceRule, StackRule, UnknownValueError
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from tests.policy_fixtures import (
    ACCOUNT,
    EDGE_PORT,
    INGRESS,
    MESH_PORT,
    ROLE_POLICY,
    SG,
    TASK_DEFINITION,
    UNKNOWN,
    Stack,
    allow,
    arn,
    bootstrap,
    container_definitions,
    make,
    platform,
    policy_document,
    tags,
    tls_only,
)

ROOT = Path(__file__).resolve().parent.parent
PACK = runpy.run_path(str(ROOT / "policies" / "__main__.py"), run_name="policy_pack_under_test")
RULES: dict[str, Any] = {rule.name: rule for rule in PACK["RULES"]}


def found(rule: StackRule, stack: Stack, **config: Any) -> list[str]:
    return [f.message for f in rule.run(stack.resources, config)]


# ==================================================================================================
# The pack.
# ==================================================================================================
def test_pack_assembles_every_rule_of_every_module_once() -> None:
    modules = (
        containers,
        data_stores,
        deployments,
        edge,
        identity,
        mesh,
        messaging,
        network,
        observability,
        ownership,
        serverless,
        baseline,
        exceptions,
    )
    in_modules = [rule.name for module in modules for rule in module.RULES]
    assert sorted(in_modules) == sorted(RULES)
    assert len(PACK["RULES"]) == len(RULES) == 43
    assert [rule.name for rule in PACK["RULES"][-2:]] == ["policy-exceptions-applied", "policy-exceptions"]


def test_every_rule_has_metadata_and_a_valid_policy_object() -> None:
    for rule in PACK["RULES"]:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.name
        assert rule.description and rule.remediation, rule.name
        assert isinstance(rule.severity, Severity) and isinstance(rule.enforcement, EnforcementLevel)
        for key, prop in rule.config_schema.items():
            assert "type" in prop and "default" in prop and "description" in prop, (rule.name, key)
        policy = rule.policy()
        assert (policy.name, policy.severity, policy.enforcement_level) == (rule.name, rule.severity, rule.enforcement)
        assert policy.remediation_steps == rule.remediation


def test_only_recommendations_are_advisory() -> None:
    advisory = {name for name, rule in RULES.items() if rule.enforcement == EnforcementLevel.ADVISORY}
    assert advisory == {"ecs-readonly-root-filesystem", "policy-exceptions-applied"}


def test_readme_documents_every_rule_with_its_severity_and_enforcement() -> None:
    readme = (ROOT / "policies" / "README.md").read_text()
    for name, rule in RULES.items():
        section = re.search(rf"^### `{re.escape(name)}`\n(.*?)(?=^### |\Z)", readme, re.MULTILINE | re.DOTALL)
        assert section, f"README has no section for {name}"
        text = section.group(1)
        assert f"**Severity:** {rule.severity.value}" in text, name
        assert f"**Enforcement:** {rule.enforcement.value}" in text, name
        for key in rule.config_schema:
            assert f"`{key}`" in text, (name, key)


def test_policy_project_file_runs_the_pack_in_the_project_virtualenv() -> None:
    project = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    requirements = (ROOT / "policies" / "requirements.txt").read_text().split()
    assert "pulumi-policy==1.21.0" in requirements and "pulumi==3.272.0" in requirements


def test_the_compliant_platform_passes_every_rule() -> None:
    stack = platform()
    problems = []
    for rule in PACK["RULES"]:
        if isinstance(rule, ResourceRule):
            problems += [m for r in stack.resources for m in rule.run(r)]
        else:
            problems += [f.message for f in rule.run(stack.resources)]
    assert problems == []


# --- through pulumi_policy's own objects -----------------------------------------------------------
def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def test_resource_policy_reports_through_pulumi_policy_with_configured_values() -> None:
    policy = data_stores.RDS_PRODUCTION_RESILIENCE.policy()
    reported: list[tuple[str, str | None]] = []
    props = {
        "storageEncrypted": True,
        "multiAz": True,
        "deletionProtection": True,
        "backupRetentionPeriod": 7.0,
        "tags": {"Environment": "staging"},
    }
    args = ResourceValidationArgs(
        "aws:rds/instance:Instance",
        unknown_checking_proxy(props),
        "urn:db",
        "db",
        _options(),
        None,
        {"productionEnvironments": ["prod", "staging"], "minimumBackupRetentionDays": 14.0},
    )
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))
    assert reported == [
        (
            "RDS instance 'db' keeps automated backups 7 days in production (Environment=staging); "
            "backupRetentionPeriod must be at least 14.",
            None,
        )
    ]
    other = ResourceValidationArgs("aws:s3/bucket:Bucket", unknown_checking_proxy({}), "urn:b", "b", _options(), None)
    policy.validate(other, lambda message, urn=None: reported.append((message, urn)))
    assert len(reported) == 1


def test_stack_policy_reports_the_resource_urn_through_pulumi_policy() -> None:
    table = PolicyResource(
        "aws:dynamodb/table:Table",
        unknown_checking_proxy({"name": "audit"}),
        "urn:audit",
        "audit",
        _options(),
        None,
        None,
        [],
        {},
    )
    reported: list[tuple[str, str | None]] = []
    ownership.NO_SHARED_DATABASES.policy().validate(
        StackValidationArgs([table], None), lambda message, urn=None: reported.append((message, urn))
    )
    assert reported == [
        (
            "Database 'audit' (DynamoDB table) belongs to no service: declare it inside the component of the one "
            "FargateMicroservice or NotificationFunction that owns it.",
            "urn:audit",
        )
    ]


def test_resource_rule_lets_an_unknown_value_reach_the_engine() -> None:
    db = make("aws:rds/instance:Instance", "db", {"storageEncrypted": UNKNOWN})
    with pytest.raises(UnknownValueError):
        data_stores.RDS_STORAGE_ENCRYPTED.run(db)


def test_stack_rule_reports_what_it_can_decide_before_re_raising_an_unknown() -> None:
    stack = platform()
    stack["orders-task"].update(containerDefinitions=UNKNOWN)
    stack["inventory-task"].update(containerDefinitions=container_definitions("inventory", None))
    findings = mesh.MTLS_REQUIRED.check(stack.resources, mesh.MTLS_REQUIRED.settings())
    seen = []
    with pytest.raises(UnknownValueError):
        for finding in findings:
            seen.append(finding)
    assert seen == [
        Finding(
            "service 'inventory': task definition 'inventory-task' has no 'envoy' sidecar container, so the service "
            "is not in the mTLS mesh.",
            stack["inventory-task"].urn,
        )
    ]


# ==================================================================================================
# no-shared-databases
# ==================================================================================================
SHARED = ownership.NO_SHARED_DATABASES
ORDERS_TABLE = "Database 'orders-table' (DynamoDB table) owned by service 'orders' is shared with service 'payment'"
INVENTORY_DB = "Database 'inventory-db' (RDS instance) owned by service 'inventory'"


def test_no_shared_databases_accepts_databases_used_by_their_owner_only() -> None:
    assert found(SHARED, platform()) == []


def test_no_shared_databases_rejects_a_database_of_no_service() -> None:
    stack = platform()
    stack.add("aws:dynamodb/table:Table", "audit", {"name": "audit"})
    assert found(SHARED, stack) == [
        "Database 'audit' (DynamoDB table) belongs to no service: declare it inside the component of the one "
        "FargateMicroservice or NotificationFunction that owns it."
    ]


def test_no_shared_databases_rejects_a_database_nested_in_two_services() -> None:
    stack = Stack()
    outer = stack.add("microservices:service:FargateMicroservice", "outer")
    inner = stack.add("microservices:service:FargateMicroservice", "inner", parent=outer)
    stack.add("aws:elasticache/replicationGroup:ReplicationGroup", "cache", parent=inner)
    assert found(SHARED, stack) == [
        "Database 'cache' (ElastiCache replication group) is nested in several service components "
        "('inner', 'outer'); a database belongs to exactly one service."
    ]


def test_no_shared_databases_rejects_another_service_depending_on_the_database() -> None:
    stack = platform()
    table = stack["orders-table"]
    stack.add("aws:ssm/parameter:Parameter", "payment-orders-ref", parent=stack["payment"], deps={"value": [table]})
    assert found(SHARED, stack) == [f"{ORDERS_TABLE}: aws:ssm/parameter:Parameter 'payment-orders-ref' depends on it"]


def test_no_shared_databases_rejects_a_dependency_on_the_database_component_s_members() -> None:
    stack = platform()
    db_sg = stack["inventory-db-sg"]
    stack.add(
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "orders-to-db",
        parent=stack["orders"],
        deps={"referencedSecurityGroupId": [db_sg]},
    )
    assert found(SHARED, stack) == [
        f"{INVENTORY_DB} is shared with service 'orders': aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule "
        "'orders-to-db' depends on its aws:ec2/securityGroup:SecurityGroup 'inventory-db-sg'"
    ]


def _grant(stack: Stack, service: str, *statements: dict[str, Any]) -> None:
    stack.add(
        ROLE_POLICY,
        f"{service}-extra-policy",
        {"policy": policy_document(*statements)},
        parent=stack[service],
        deps={"role": [stack[f"{service}-task-role"]]},
    )


def test_no_shared_databases_rejects_an_iam_grant_naming_the_table() -> None:
    stack = platform()
    _grant(stack, "payment", allow("dynamodb:GetItem", arn("dynamodb", "table/dev-orders")))
    assert found(SHARED, stack) == [
        f"{ORDERS_TABLE}: aws:iam/rolePolicy:RolePolicy 'payment-extra-policy' grants dynamodb:GetItem on "
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/dev-orders"
    ]


def test_no_shared_databases_rejects_a_wildcard_grant_covering_the_table() -> None:
    stack = platform()
    _grant(stack, "payment", allow(["dynamodb:Query", "xray:PutTraceSegments"], "arn:aws:dynamodb:*:*:table/*"))
    assert found(SHARED, stack) == [
        f"{ORDERS_TABLE}: aws:iam/rolePolicy:RolePolicy 'payment-extra-policy' grants dynamodb:Query on "
        "arn:aws:dynamodb:*:*:table/*"
    ]


def test_no_shared_databases_follows_managed_policies_to_the_roles_they_are_attached_to() -> None:
    stack = platform()
    policy = stack.add("aws:iam/policy:Policy", "reporting", {"policy": policy_document(allow("dynamodb:*", "*"))})
    stack.add(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "reporting-payment",
        deps={"policyArn": [policy], "role": [stack["payment-task-role"]]},
    )
    assert found(SHARED, stack) == [f"{ORDERS_TABLE}: aws:iam/policy:Policy 'reporting' grants dynamodb:* on *"]


def test_no_shared_databases_ignores_grants_on_other_tables_and_other_services() -> None:
    stack = platform()
    _grant(
        stack,
        "payment",
        allow("dynamodb:GetItem", arn("dynamodb", "table/dev-payments")),
        allow("xray:PutTraceSegments", "*"),
        {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"},
    )
    assert found(SHARED, stack) == []


def test_no_shared_databases_rejects_a_grant_on_the_credentials_secret() -> None:
    stack = platform()
    secret = arn("secretsmanager", "secret:rds!db-1234abcd-AbCdEf")
    _grant(stack, "orders", allow("secretsmanager:GetSecretValue", secret))
    assert found(SHARED, stack) == [
        f"{INVENTORY_DB} is shared with service 'orders': aws:iam/rolePolicy:RolePolicy 'orders-extra-policy' "
        f"grants secretsmanager:GetSecretValue on {secret}"
    ]


def test_no_shared_databases_matches_wildcards_against_a_secret_arn_unknown_in_preview() -> None:
    stack = platform()
    stack["inventory-db"].update(masterUserSecrets=UNKNOWN)
    _grant(stack, "orders", allow("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:*:*:secret:rds!*"))
    _grant(stack, "payment", allow("secretsmanager:GetSecretValue", arn("secretsmanager", "secret:payment-AbC")))
    assert found(SHARED, stack) == [
        f"{INVENTORY_DB} is shared with service 'orders': aws:iam/rolePolicy:RolePolicy 'orders-extra-policy' "
        "grants secretsmanager:GetSecretValue on arn:aws:secretsmanager:*:*:secret:rds!*"
    ]


def test_no_shared_databases_rejects_another_service_s_security_group_in_the_database_group() -> None:
    stack = platform()
    stack.add(
        INGRESS,
        "db-from-orders",
        {"fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"},
        deps={"securityGroupId": [stack["inventory-db-sg"]], "referencedSecurityGroupId": [stack["orders-sg"]]},
    )
    assert found(SHARED, stack) == [
        f"{INVENTORY_DB} is shared with service 'orders': security group rule 'db-from-orders' lets security group "
        "'orders-sg' into the database's security group 'inventory-db-sg'"
    ]


@pytest.mark.parametrize(
    ("props", "deps", "source"),
    [
        ({"cidrIpv4": "10.0.0.0/16"}, {}, "CIDR 10.0.0.0/16"),
        ({}, {"referencedSecurityGroupId": ["alb-sg"]}, "security group 'alb-sg'"),
    ],
)
def test_no_shared_databases_rejects_ingress_from_beyond_the_owner(props: dict, deps: dict, source: str) -> None:
    stack = platform()
    resolved = {k: [stack[n] for n in v] for k, v in deps.items()}
    stack.add(
        INGRESS,
        "db-open",
        {"fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp", **props},
        deps={"securityGroupId": [stack["inventory-db-sg"]], **resolved},
    )
    assert found(SHARED, stack) == [
        f"{INVENTORY_DB} is reachable from outside its owner: security group rule 'db-open' lets {source} into the "
        "database's security group 'inventory-db-sg'"
    ]


def test_no_shared_databases_rejects_another_service_reading_the_credentials_secret() -> None:
    stack = platform()
    secret = arn("secretsmanager", "secret:rds!db-1234abcd-AbCdEf")
    stack["orders-task"].update(
        containerDefinitions=container_definitions(
            "orders", None, secrets=[{"name": "DB", "valueFrom": f"{secret}:password::"}]
        )
    )
    assert found(SHARED, stack) == [
        f"{INVENTORY_DB} is shared with service 'orders': secret 'DB' of container 'app' of task definition "
        "'orders-task' (run by ECS service 'orders-service') reads its credentials secret"
    ]


def test_no_shared_databases_reports_known_findings_when_a_policy_document_is_unknown() -> None:
    stack = platform()
    stack["orders-task-policy"].update(policy=UNKNOWN)
    _grant(stack, "payment", allow("dynamodb:GetItem", arn("dynamodb", "table/dev-orders")))
    seen = []
    with pytest.raises(UnknownValueError):
        for finding in SHARED.check(stack.resources, SHARED.settings()):
            seen.append(finding.message)
    assert seen == [
        f"{ORDERS_TABLE}: aws:iam/rolePolicy:RolePolicy 'payment-extra-policy' grants dynamodb:GetItem on "
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/dev-orders"
    ]


# ==================================================================================================
# mtls-required
# ==================================================================================================
MTLS = mesh.MTLS_REQUIRED
DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


def _with_bootstrap(stack: Stack, service: str, envoy: dict[str, Any]) -> Stack:
    stack[f"{service}-task"].update(containerDefinitions=container_definitions(service, envoy))
    return stack


def _payment_bootstrap() -> dict[str, Any]:
    return bootstrap("payment", callers=["orders"], upstreams=[])


def _inbound_tls(envoy: dict[str, Any]) -> dict[str, Any]:
    return envoy["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]["typed_config"]


def _upstream_tls(envoy: dict[str, Any], index: int = 1) -> dict[str, Any]:
    return envoy["static_resources"]["clusters"][index]["transport_socket"]["typed_config"]


PAYMENT_INBOUND = "service 'payment': listener 'inbound_mesh' on 0.0.0.0:15443"
ORDERS_UPSTREAM = "service 'orders': outbound cluster 'upstream_payment'"


def test_mtls_accepts_sidecars_with_strict_mutual_tls() -> None:
    assert found(MTLS, platform()) == []


def test_mtls_accepts_the_service_mesh_component_s_own_bootstrap() -> None:
    from components import envoy

    view = envoy.MeshServiceView(
        service="payment",
        environment="dev",
        trust_domain="microservices.internal",
        namespace="dev.microservices.internal",
        app_port=8080,
        allowed_callers=("orders",),
        upstreams=("inventory",),
        public=True,
    )
    assert (
        list(
            mesh.check_bootstrap(
                envoy.build_bootstrap(view), mesh_port=MESH_PORT, edge_port=EDGE_PORT, has_callers=True
            )
        )
        == []
    )


def test_mtls_rejects_a_task_without_the_envoy_sidecar() -> None:
    stack = platform()
    stack["inventory-task"].update(containerDefinitions=container_definitions("inventory", None))
    assert found(MTLS, stack) == [
        "service 'inventory': task definition 'inventory-task' has no 'envoy' sidecar container, so the service is "
        "not in the mTLS mesh."
    ]


def test_mtls_rejects_a_sidecar_whose_bootstrap_cannot_be_verified() -> None:
    stack = platform()
    definitions = json.loads(stack["payment-task"].raw["containerDefinitions"])
    definitions[1]["command"] = ["-c", "/etc/envoy/envoy.yaml"]
    stack["payment-task"].update(containerDefinitions=json.dumps(definitions))
    definitions[1]["command"] = ["--config-yaml", "{not json"]
    stack["inventory-task"].update(containerDefinitions=json.dumps(definitions))
    assert found(MTLS, stack) == [
        "service 'payment': the 'envoy' container of task definition 'payment-task' has no inline bootstrap "
        "(command: --config-yaml <bootstrap>), so its mTLS cannot be verified.",
        "service 'inventory': the Envoy bootstrap of task definition 'inventory-task' is not valid JSON (Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1)).",
    ]


def test_mtls_rejects_an_inbound_listener_that_does_not_require_client_certificates() -> None:
    envoy = _payment_bootstrap()
    _inbound_tls(envoy)["require_client_certificate"] = False
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == [
        f"{PAYMENT_INBOUND} does not require a client certificate (require_client_certificate: true): TLS, not mutual."
    ]


def test_mtls_rejects_a_plaintext_inbound_listener() -> None:
    envoy = _payment_bootstrap()
    del envoy["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == [
        f"{PAYMENT_INBOUND} accepts plaintext: its filter chain has no DownstreamTlsContext transport socket."
    ]


def test_mtls_rejects_an_inbound_listener_without_the_mesh_ca_or_caller_restriction() -> None:
    envoy = _payment_bootstrap()
    _inbound_tls(envoy)["common_tls_context"]["validation_context"] = {}
    del _inbound_tls(envoy)["common_tls_context"]["tls_certificates"]
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == [
        f"{PAYMENT_INBOUND} presents no certificate (common_tls_context.tls_certificates).",
        f"{PAYMENT_INBOUND} does not verify client certificates against the mesh CA (validation_context.trusted_ca).",
        f"{PAYMENT_INBOUND} admits every certificate of the CA: restrict the callers with "
        "validation_context.match_typed_subject_alt_names or an RBAC filter.",
    ]


def test_mtls_accepts_an_rbac_filter_instead_of_san_matchers_and_camel_case_keys() -> None:
    envoy = _payment_bootstrap()
    chain = envoy["static_resources"]["listeners"][0]["filter_chains"][0]
    orders = "spiffe://microservices.internal/dev/orders"
    rbac = {
        "rules": {
            "action": "ALLOW",
            "policies": {
                "callers": {
                    "permissions": [{"any": True}],
                    "principals": [{"authenticated": {"principalName": {"exact": orders}}}],
                }
            },
        }
    }
    chain["filters"][0]["typed_config"] = {"http_filters": [{"name": "envoy.filters.http.rbac", "typedConfig": rbac}]}
    chain["transport_socket"]["typed_config"] = {
        "@type": DOWNSTREAM,
        "requireClientCertificate": True,
        "commonTlsContext": {
            "tlsCertificates": [{}],
            "validationContext": {"trustedCa": {"environmentVariable": "MESH_CA_BUNDLE"}},
        },
    }
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == []


def test_mtls_rejects_a_called_service_without_an_inbound_listener() -> None:
    envoy = bootstrap("payment", callers=[], upstreams=[])
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == [
        "service 'payment': other services' security groups may reach it on the mesh port 15443, but its Envoy has "
        "no inbound mTLS listener there."
    ]


def test_mtls_rejects_any_other_plaintext_listener_outside_loopback() -> None:
    envoy = _payment_bootstrap()
    envoy["static_resources"]["listeners"].append(
        {
            "name": "debug",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8081}},
            "filter_chains": [{"filters": []}],
        }
    )
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == [
        "service 'payment': listener 'debug' on 0.0.0.0:8081 accepts plaintext: its filter chain has no "
        "DownstreamTlsContext transport socket."
    ]


def test_mtls_requires_tls_but_no_client_certificate_on_the_edge_port() -> None:
    envoy = bootstrap("orders", callers=[], upstreams=["payment", "inventory"], public=True)
    del envoy["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]
    assert found(MTLS, _with_bootstrap(platform(), "orders", envoy)) == [
        "service 'orders': listener 'edge' on 0.0.0.0:15444 accepts plaintext: its filter chain has no "
        "DownstreamTlsContext transport socket."
    ]


def test_mtls_rejects_a_plaintext_outbound_cluster() -> None:
    envoy = bootstrap("orders", callers=[], upstreams=["payment", "inventory"], public=True)
    del envoy["static_resources"]["clusters"][1]["transport_socket"]
    assert found(MTLS, _with_bootstrap(platform(), "orders", envoy)) == [
        f"{ORDERS_UPSTREAM} connects in plaintext: it has no UpstreamTlsContext transport socket."
    ]


def test_mtls_rejects_an_outbound_cluster_without_client_certificate_ca_or_san_check() -> None:
    envoy = bootstrap("orders", callers=[], upstreams=["payment", "inventory"], public=True)
    _upstream_tls(envoy)["common_tls_context"] = {}
    assert found(MTLS, _with_bootstrap(platform(), "orders", envoy)) == [
        f"{ORDERS_UPSTREAM} presents no client certificate (common_tls_context.tls_certificates): TLS, not mutual.",
        f"{ORDERS_UPSTREAM} does not verify the server against the mesh CA (validation_context.trusted_ca).",
        f"{ORDERS_UPSTREAM} does not check the server's identity (validation_context.match_typed_subject_alt_names).",
    ]


def test_mtls_rejects_dynamic_bootstraps() -> None:
    envoy = _payment_bootstrap()
    envoy["dynamic_resources"] = {"ads_config": {"api_type": "GRPC"}}
    assert found(MTLS, _with_bootstrap(platform(), "payment", envoy)) == [
        "service 'payment': its Envoy bootstrap uses dynamic_resources (xDS); only a static bootstrap can be verified."
    ]


@pytest.mark.parametrize(("ports", "opened"), [((8080, 8080, "tcp"), "port 8080"), ((0, 0, "-1"), "all ports")])
def test_mtls_rejects_non_mesh_ports_between_services(ports: tuple[int, int, str], opened: str) -> None:
    stack = platform()
    low, high, protocol = ports
    stack.add(
        INGRESS,
        "payment-app-from-orders",
        {"fromPort": low, "toPort": high, "ipProtocol": protocol},
        parent=stack["payment"],
        deps={"securityGroupId": [stack["payment-sg"]], "referencedSecurityGroupId": [stack["orders-sg"]]},
    )
    assert found(MTLS, stack) == [
        f"security group rule 'payment-app-from-orders' opens {opened} of service 'payment' (security group "
        "'payment-sg') to service 'orders' (security group 'orders-sg'); between services only the mesh port 15443 "
        "may be open, so that east-west traffic goes through the mTLS sidecars."
    ]


def test_mtls_rejects_cidr_ingress_on_a_service_group() -> None:
    stack = platform()
    stack.add(
        INGRESS,
        "payment-from-vpc",
        {"cidrIpv4": "10.0.0.0/16", "fromPort": MESH_PORT, "toPort": MESH_PORT, "ipProtocol": "tcp"},
        deps={"securityGroupId": [stack["payment-sg"]]},
    )
    assert found(MTLS, stack) == [
        "security group rule 'payment-from-vpc' opens port 15443 of service 'payment' (security group 'payment-sg') "
        "to 10.0.0.0/16; a service's security group admits only its callers' security groups (on the mesh port "
        "15443) and the load balancer's."
    ]


def test_mtls_leaves_database_security_groups_to_no_shared_databases() -> None:
    stack = platform()
    stack.add(
        INGRESS,
        "db-from-orders",
        {"fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"},
        deps={"securityGroupId": [stack["inventory-db-sg"]], "referencedSecurityGroupId": [stack["orders-sg"]]},
    )
    assert found(MTLS, stack) == []


def test_mtls_uses_the_configured_mesh_port() -> None:
    assert found(MTLS, platform(), meshPort=16443) == [
        "security group rule 'payment-from-orders' opens port 15443 of service 'payment' (security group "
        "'payment-sg') to service 'orders' (security group 'orders-sg'); between services only the mesh port 16443 "
        "may be open, so that east-west traffic goes through the mTLS sidecars.",
        "security group rule 'inventory-from-orders' opens port 15443 of service 'inventory' (security group "
        "'inventory-sg') to service 'orders' (security group 'orders-sg'); between services only the mesh port "
        "16443 may be open, so that east-west traffic goes through the mTLS sidecars.",
    ]


def test_mtls_rejects_ecs_service_connect_with_tls_as_tls_not_mutual() -> None:
    stack = platform()
    stack["payment-service"].update(
        serviceConnectConfiguration={"enabled": True, "services": [{"portName": "http", "tls": {"kmsKey": "k"}}]}
    )
    assert found(MTLS, stack) == [
        "ECS service 'payment-service' uses ECS Service Connect with TLS: TLS, not mutual. Service Connect encrypts "
        "traffic with AWS Private CA certificates but does not authenticate the calling service (no client "
        "certificates). Disable Service Connect and send east-west traffic through the Envoy sidecars of the "
        "ServiceMesh component (mTLS on port 15443)."
    ]


def test_mtls_rejects_ecs_service_connect_without_tls_as_plaintext() -> None:
    stack = platform()
    stack["payment-service"].update(serviceConnectConfiguration={"enabled": True, "services": [{"portName": "h"}]})
    stack["orders-service"].update(serviceConnectConfiguration={"enabled": False})
    assert found(MTLS, stack) == [
        "ECS service 'payment-service' uses ECS Service Connect without TLS: east-west traffic in plaintext. Disable "
        "Service Connect and send east-west traffic through the Envoy sidecars of the ServiceMesh component (mTLS on "
        "port 15443)."
    ]


def test_mtls_rejects_a_fargate_service_without_a_task_definition() -> None:
    stack = platform()
    stack.add("microservices:service:FargateMicroservice", "reports")
    assert found(MTLS, stack) == [
        "service 'reports': its component declares no aws:ecs/taskDefinition:TaskDefinition, so its Envoy sidecar "
        "cannot be verified."
    ]


# ==================================================================================================
# app-mesh-end-of-support
# ==================================================================================================
END_OF_SUPPORT = (
    "AWS App Mesh reached end of support on 2026-09-30: new meshes cannot be created and the service is no longer "
    "supported. Use the Envoy sidecars with mTLS from the ServiceMesh component (microservices:mesh:ServiceMesh) "
    "instead."
)


@pytest.mark.parametrize("resource_type", ["aws:appmesh/mesh:Mesh", "aws:appmesh/virtualNode:VirtualNode"])
def test_app_mesh_resources_are_rejected(resource_type: str) -> None:
    rule = mesh.APP_MESH_END_OF_SUPPORT_RULE
    assert rule.run(make(resource_type, "mesh", {"name": "dev"})) == [f"{resource_type} 'mesh': {END_OF_SUPPORT}"]


def test_app_mesh_proxy_configuration_is_rejected_and_other_task_definitions_pass() -> None:
    rule = mesh.APP_MESH_END_OF_SUPPORT_RULE
    task = make(TASK_DEFINITION, "task", {"proxyConfiguration": {"type": "APPMESH", "containerName": "envoy"}})
    assert rule.run(task) == [f"task definition 'task' sets proxyConfiguration type APPMESH: {END_OF_SUPPORT}"]
    assert rule.run(make(TASK_DEFINITION, "task", {"containerDefinitions": "[]"})) == []
    assert rule.run(make("aws:ecs/service:Service", "svc", {})) == []


# ==================================================================================================
# RDS
# ==================================================================================================
INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
GOOD_DB = {
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "manageMasterUserPassword": True,
    "multiAz": True,
    "deletionProtection": True,
    "backupRetentionPeriod": 7,
    "tags": tags("prod", service="inventory"),
}


def _db(resource_type: str = INSTANCE, **changes: Any) -> Any:
    return make(resource_type, "db", {k: v for k, v in {**GOOD_DB, **changes}.items() if v is not None})


def test_rds_rules_accept_a_hardened_production_database() -> None:
    for rule in data_stores.RULES[:4]:
        assert rule.run(_db()) == [] and rule.run(_db(CLUSTER)) == [], rule.name


def test_rds_storage_encrypted() -> None:
    rule = data_stores.RDS_STORAGE_ENCRYPTED
    assert rule.run(_db(storageEncrypted=None)) == [
        "RDS instance 'db' does not encrypt its storage (storageEncrypted: true)."
    ]
    assert rule.run(_db(CLUSTER, storageEncrypted=False)) == [
        "RDS cluster 'db' does not encrypt its storage (storageEncrypted: true)."
    ]
    assert rule.run(_db(storageEncrypted=None, replicateSourceDb="source")) == []


def test_rds_no_public_access() -> None:
    rule = data_stores.RDS_NO_PUBLIC_ACCESS
    assert rule.run(_db(publiclyAccessible=True)) == [
        "RDS instance 'db' is publicly accessible (publiclyAccessible must be false)."
    ]
    member = make("aws:rds/clusterInstance:ClusterInstance", "member", {"publiclyAccessible": True})
    assert rule.run(member) == [
        "RDS cluster instance 'member' is publicly accessible (publiclyAccessible must be false)."
    ]


def test_rds_managed_master_password() -> None:
    rule = data_stores.RDS_MANAGED_MASTER_PASSWORD
    assert rule.run(_db(password="hunter2")) == [
        "RDS instance 'db' sets its master password in the program; let RDS manage it in Secrets Manager."
    ]
    assert rule.run(_db(CLUSTER, manageMasterUserPassword=None)) == [
        "RDS cluster 'db' does not keep its master credentials in Secrets Manager (manageMasterUserPassword: true)."
    ]


def test_rds_production_resilience_per_property() -> None:
    rule = data_stores.RDS_PRODUCTION_RESILIENCE
    where = "in production (Environment=prod)"
    assert rule.run(_db(multiAz=False)) == [f"RDS instance 'db' is not Multi-AZ {where} (multiAz: true)."]
    assert rule.run(_db(deletionProtection=None)) == [
        f"RDS instance 'db' has no deletion protection {where} (deletionProtection: true)."
    ]
    assert rule.run(_db(backupRetentionPeriod=3)) == [
        f"RDS instance 'db' keeps automated backups 3 days {where}; backupRetentionPeriod must be at least 7."
    ]
    assert rule.run(_db(CLUSTER, backupRetentionPeriod=None)) == [
        f"RDS cluster 'db' does not set backupRetentionPeriod {where}; it must be at least 7 days."
    ]


def test_rds_production_resilience_depends_on_the_environment() -> None:
    rule = data_stores.RDS_PRODUCTION_RESILIENCE
    dev = _db(multiAz=False, deletionProtection=False, backupRetentionPeriod=1, tags=tags("dev"))
    assert rule.run(dev) == []
    assert rule.run(dev, {"productionEnvironments": ["prod", "dev"]}) != []
    untagged = _db(multiAz=False, tags=None)
    assert rule.run(untagged) == [
        "RDS instance 'db' is not Multi-AZ in production (no Environment tag, treated as production) (multiAz: true)."
    ]
    assert rule.run(_db(backupRetentionPeriod=7), {"minimumBackupRetentionDays": 14}) == [
        "RDS instance 'db' keeps automated backups 7 days in production (Environment=prod); backupRetentionPeriod "
        "must be at least 14."
    ]


# ==================================================================================================
# DynamoDB and ElastiCache
# ==================================================================================================
TABLE = "aws:dynamodb/table:Table"


def test_dynamodb_table_encrypted() -> None:
    rule = data_stores.DYNAMODB_TABLE_ENCRYPTED
    assert rule.run(make(TABLE, "t", {"serverSideEncryption": {"enabled": True}})) == []
    assert rule.run(make(TABLE, "t", {})) == [
        "DynamoDB table 't' is not encrypted with KMS (serverSideEncryption.enabled: true, with the environment's "
        "key as kmsKeyArn)."
    ]
    aws_managed = make(TABLE, "t", {"serverSideEncryption": {"enabled": True}})
    assert rule.run(aws_managed, {"requireCustomerManagedKey": True}) == [
        "DynamoDB table 't' uses the AWS managed key; set serverSideEncryption.kmsKeyArn."
    ]


def test_dynamodb_pitr_and_deletion_protection() -> None:
    rule = data_stores.DYNAMODB_PITR_AND_DELETION_PROTECTION
    good = {"pointInTimeRecovery": {"enabled": True}, "deletionProtectionEnabled": True, "tags": tags("prod")}
    assert rule.run(make(TABLE, "t", good)) == []
    assert rule.run(make(TABLE, "t", {**good, "pointInTimeRecovery": {"enabled": False}})) == [
        "DynamoDB table 't' has no point-in-time recovery (pointInTimeRecovery.enabled: true)."
    ]
    assert rule.run(make(TABLE, "t", {**good, "deletionProtectionEnabled": False})) == [
        "DynamoDB table 't' has no deletion protection in production (Environment=prod; "
        "deletionProtectionEnabled: true)."
    ]
    assert rule.run(make(TABLE, "t", {**good, "deletionProtectionEnabled": False, "tags": tags("dev")})) == []


GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE = "aws:elasticache/cluster:Cluster"


def test_elasticache_encrypted() -> None:
    rule = data_stores.ELASTICACHE_ENCRYPTED
    good = {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True}
    assert rule.run(make(GROUP, "g", good)) == []
    assert rule.run(make(GROUP, "g", {**good, "atRestEncryptionEnabled": False})) == [
        "ElastiCache replication group 'g' does not encrypt data at rest (atRestEncryptionEnabled: true)."
    ]
    assert rule.run(make(GROUP, "g", {"atRestEncryptionEnabled": "true"})) == [
        "ElastiCache replication group 'g' does not encrypt in transit (transitEncryptionEnabled: true)."
    ]
    assert rule.run(make(CACHE, "c", {"engine": "redis"})) == [
        "ElastiCache cluster 'c' cannot encrypt data at rest; declare an aws.elasticache.ReplicationGroup instead.",
        "ElastiCache cluster 'c' does not encrypt in transit (transitEncryptionEnabled: true).",
    ]
    assert rule.run(make(CACHE, "c", {"engine": "memcached", "transitEncryptionEnabled": True})) == []
    assert rule.run(make(CACHE, "c", {"replicationGroupId": "dev-payment"})) == []


def test_elasticache_multi_az_in_production() -> None:
    rule = data_stores.ELASTICACHE_MULTI_AZ_IN_PRODUCTION
    good = {"multiAzEnabled": True, "automaticFailoverEnabled": True, "tags": tags("prod")}
    assert rule.run(make(GROUP, "g", good)) == []
    assert rule.run(make(GROUP, "g", {**good, "multiAzEnabled": False, "tags": tags("dev")})) == []
    assert rule.run(make(GROUP, "g", {**good, "automaticFailoverEnabled": False})) == [
        "ElastiCache replication group 'g' is not Multi-AZ with automatic failover in production (Environment=prod; "
        "multiAzEnabled and automaticFailoverEnabled: true, at least one replica)."
    ]


# ==================================================================================================
# SQS, SNS, EventBridge
# ==================================================================================================
QUEUE = "aws:sqs/queue:Queue"
REDRIVE = json.dumps({"deadLetterTargetArn": arn("sqs", "q-dlq"), "maxReceiveCount": 5})


def test_sqs_queue_encrypted() -> None:
    rule = messaging.SQS_QUEUE_ENCRYPTED
    assert rule.run(make(QUEUE, "q", {"kmsMasterKeyId": "alias/dev"})) == []
    assert rule.run(make(QUEUE, "q", {"sqsManagedSseEnabled": True})) == []
    assert rule.run(make(QUEUE, "q", {})) == [
        "SQS queue 'q' does not declare server-side encryption (kmsMasterKeyId, or sqsManagedSseEnabled: true)."
    ]
    assert rule.run(make(QUEUE, "q", {"sqsManagedSseEnabled": True}), {"requireKms": True}) == [
        "SQS queue 'q' is not encrypted with a KMS key (kmsMasterKeyId)."
    ]


def test_sqs_queue_dead_letter_queue() -> None:
    rule = messaging.SQS_QUEUE_DEAD_LETTER_QUEUE
    assert rule.run(make(QUEUE, "q", {"redrivePolicy": REDRIVE})) == []
    assert rule.run(make(QUEUE, "q", {})) == [
        "SQS queue 'q' has no dead-letter queue (redrivePolicy with deadLetterTargetArn and maxReceiveCount); if it "
        "is a dead-letter queue itself, name it '*-dlq'."
    ]
    assert rule.run(
        make(QUEUE, "q", {"redrivePolicy": json.dumps({"deadLetterTargetArn": "x", "maxReceiveCount": 0})})
    ) == ["SQS queue 'q' has an incomplete redrivePolicy: it needs deadLetterTargetArn and maxReceiveCount >= 1."]
    assert rule.run(make(QUEUE, "q", {"redrivePolicy": "{"})) == [
        "SQS queue 'q' has a redrivePolicy that is not valid JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1))."
    ]


@pytest.mark.parametrize(
    ("name", "props"),
    [
        ("orders-dlq", {}),
        ("orders-dead", {"name": "orders-dlq-1a2b3c4"}),
        ("orders-dead", {"name": "orders-dlq.fifo"}),
        ("orders-dead", {"redriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})}),
    ],
)
def test_sqs_dead_letter_queues_need_no_dead_letter_queue(name: str, props: dict[str, Any]) -> None:
    assert messaging.SQS_QUEUE_DEAD_LETTER_QUEUE.run(make(QUEUE, name, props)) == []


TLS_RULE = messaging.SQS_SNS_TLS_ONLY


def test_sqs_sns_tls_only_accepts_deny_insecure_transport_policies() -> None:
    assert found(TLS_RULE, platform()) == []


def test_sqs_sns_tls_only_rejects_queues_and_topics_without_it() -> None:
    stack = platform()
    stack.add(QUEUE, "lonely", {"sqsManagedSseEnabled": True})
    stack["order-events-policy"].update(policy=policy_document(allow("sns:Publish", "*")))
    assert found(TLS_RULE, stack) == [
        "SQS queue 'lonely' has no resource policy denying requests without TLS on its own ARN (a Deny statement for "
        "Principal '*' on sqs:SendMessage with Condition Bool aws:SecureTransport = false and Resource its ARN).",
        "SNS topic 'order-events' has no resource policy denying requests without TLS on its own ARN (a Deny "
        "statement for Principal '*' on sns:Publish with Condition Bool aws:SecureTransport = false and Resource "
        "its ARN).",
    ]


def test_sqs_sns_tls_only_accepts_inline_policies_and_literal_links() -> None:
    stack = platform()
    stack.add(QUEUE, "inline", {"policy": tls_only(arn("sqs", "inline"), "sqs:*")})
    literal = stack.add(QUEUE, "literal", {"url": "https://sqs/literal"})
    stack.add(
        "aws:sqs/queuePolicy:QueuePolicy",
        "literal-policy",
        {"queueUrl": "https://sqs/literal", "policy": tls_only(arn("sqs", "literal"), "*")},
    )
    assert literal.name == "literal"
    assert found(TLS_RULE, stack) == []


def test_sns_topic_encrypted() -> None:
    rule = messaging.SNS_TOPIC_ENCRYPTED
    assert rule.run(make("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": "alias/dev"})) == []
    assert rule.run(make("aws:sns/topic:Topic", "t", {})) == [
        "SNS topic 't' is not encrypted with KMS (kmsMasterKeyId)."
    ]


BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"


def test_eventbridge_bus_not_public() -> None:
    rule = messaging.EVENTBRIDGE_BUS_NOT_PUBLIC
    open_statement = {"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": "*"}
    assert rule.run(make(BUS_POLICY, "p", {"policy": policy_document(open_statement)})) == [
        "event bus policy 'p' allows events:PutEvents to any principal ('*') without an aws:PrincipalOrgID / "
        "aws:SourceAccount condition."
    ]
    org_only = {**open_statement, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}}
    assert rule.run(make(BUS_POLICY, "p", {"policy": policy_document(org_only)})) == []
    assert rule.run(make(BUS_POLICY, "p", {"policy": "nope"})) == [
        "event bus policy 'p' is not valid JSON (Expecting value: line 1 column 1 (char 0))."
    ]
    permission = "aws:cloudwatch/eventPermission:EventPermission"
    assert rule.run(make(permission, "perm", {"principal": "*"})) == [
        "event permission 'perm' lets any AWS account put events on the bus (principal '*')."
    ]
    assert rule.run(make(permission, "perm", {"principal": ACCOUNT})) == []


# ==================================================================================================
# ECS
# ==================================================================================================
def _task(**app: Any) -> Any:
    return make(TASK_DEFINITION, "task", {"containerDefinitions": container_definitions("orders", None, **app)})


APP = "container 'app' of task definition 'task'"


def test_container_rules_accept_a_hardened_task() -> None:
    for rule in containers.RULES[:4]:
        assert rule.run(_task()) == [], rule.name


def test_ecs_container_logging() -> None:
    assert containers.ECS_CONTAINER_LOGGING.run(_task(logConfiguration=None)) == [
        f"{APP} has no logConfiguration: send its logs to CloudWatch (awslogs or awsfirelens)."
    ]
    unreadable = make(TASK_DEFINITION, "task", {"containerDefinitions": "{}"})
    assert containers.ECS_CONTAINER_LOGGING.run(unreadable) == [
        "task definition 'task': containerDefinitions cannot be read (containerDefinitions is not a JSON array)."
    ]


def test_ecs_no_plaintext_secrets() -> None:
    rule = containers.ECS_NO_PLAINTEXT_SECRETS
    env = [
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "STRIPE_API_KEY", "value": "sk_live"},
        {"name": "DB_SECRET_ARN", "value": arn("secretsmanager", "secret:db")},
        {"name": "EMPTY_TOKEN", "value": ""},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]
    fix = "inject it from Secrets Manager through `secrets` (valueFrom = the secret's ARN)."
    assert rule.run(_task(environment=env)) == [
        f"{APP} passes 'DB_PASSWORD' as a plain environment value; {fix}",
        f"{APP} passes 'STRIPE_API_KEY' as a plain environment value; {fix}",
    ]
    assert rule.run(_task(environment=env), {"allowedEnvironmentNames": ["DB_PASSWORD", "STRIPE_API_KEY"]}) == []
    ssm = [{"name": "TOKEN", "valueFrom": arn("ssm", "parameter/token")}]
    assert rule.run(_task(secrets=ssm)) == [
        f"{APP} reads secret 'TOKEN' from '{arn('ssm', 'parameter/token')}', which is not a Secrets Manager secret ARN."
    ]


def test_ecs_no_privileged_containers() -> None:
    assert containers.ECS_NO_PRIVILEGED_CONTAINERS.run(_task(privileged=True)) == [
        f"{APP} runs privileged; remove `privileged: true` (Fargate rejects it as well)."
    ]


def test_ecs_readonly_root_filesystem_is_advice() -> None:
    assert containers.ECS_READONLY_ROOT_FILESYSTEM.run(_task(readonlyRootFilesystem=False)) == [
        f"{APP} has a writable root filesystem; set readonlyRootFilesystem: true."
    ]


def test_ecs_container_insights() -> None:
    rule = containers.ECS_CONTAINER_INSIGHTS
    cluster = "aws:ecs/cluster:Cluster"
    assert rule.run(make(cluster, "c", {"settings": [{"name": "containerInsights", "value": "enabled"}]})) == []
    assert rule.run(make(cluster, "c", {"settings": [{"name": "containerInsights", "value": "disabled"}]})) == [
        "ECS cluster 'c' does not enable CloudWatch Container Insights (settings containerInsights = disabled)."
    ]
    assert rule.run(make(cluster, "c", {})) == [
        "ECS cluster 'c' does not enable CloudWatch Container Insights (settings containerInsights = unset)."
    ]


# ==================================================================================================
# Load balancers, WAF, API Gateway
# ==================================================================================================
LISTENER = "aws:lb/listener:Listener"
HTTPS = {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "certificateArn": arn("acm", "c")}


def test_alb_https_listeners() -> None:
    rule = edge.ALB_HTTPS_LISTENERS
    allowed = ", ".join(edge.MODERN_TLS_POLICIES)
    assert rule.run(make(LISTENER, "l", HTTPS)) == []
    assert rule.run(make("aws:alb/listener:Listener", "l", {**HTTPS, "sslPolicy": "ELBSecurityPolicy-2016-08"})) == [
        f"listener 'l' uses TLS policy 'ELBSecurityPolicy-2016-08'; use one of: {allowed}."
    ]
    assert rule.run(make(LISTENER, "l", {"protocol": "HTTPS"})) == [
        f"listener 'l' uses TLS policy 'unset (ELBSecurityPolicy-2016-08)'; use one of: {allowed}.",
        "listener 'l' has no certificateArn (an ACM certificate).",
    ]
    strict = {**HTTPS, "sslPolicy": "ELBSecurityPolicy-TLS13-1-3-2021-06"}
    assert rule.run(make(LISTENER, "l", strict), {"allowedSslPolicies": ["ELBSecurityPolicy-TLS13-1-3-2021-06"]}) == []


def test_alb_http_listeners_only_redirect_to_https() -> None:
    rule = edge.ALB_HTTPS_LISTENERS
    forward = {"protocol": "HTTP", "defaultActions": [{"type": "forward", "targetGroupArn": "tg"}]}
    assert rule.run(make(LISTENER, "l", forward)) == []  # judged by the stack rule below
    assert rule.run(make(LISTENER, "l", {})) == [
        "listener 'l' declares no protocol; the AWS default for an application load balancer is plain HTTP."
    ]
    assert rule.run(make(LISTENER, "l", {"protocol": "TCP"})) == []


def _plaintext_stack(*, internal: bool, cidr: bool, redirect: bool = False) -> Stack:
    from tests.policy_fixtures import INGRESS, SG

    stack = Stack()
    caller = stack.add(SG, "vpc-link-sg", {"description": "vpc link"})
    group = stack.add(SG, "api-alb-sg", {"description": "internal alb"})
    source = {"cidrIpv4": "0.0.0.0/0"} if cidr else {"referencedSecurityGroupId": "sg-0123"}
    stack.add(
        INGRESS,
        "in-80",
        {"ipProtocol": "tcp", "fromPort": 80, "toPort": 80, **source},
        deps={"securityGroupId": [group], **({} if cidr else {"referencedSecurityGroupId": [caller]})},
    )
    lb = stack.add(
        "aws:lb/loadBalancer:LoadBalancer", "api-alb", {"internal": internal}, deps={"securityGroups": [group]}
    )
    actions = [{"type": "redirect", "redirect": {"protocol": "HTTPS"}}] if redirect else [{"type": "fixed-response"}]
    stack.add(
        LISTENER, "l", {"protocol": "HTTP", "port": 80, "defaultActions": actions}, deps={"loadBalancerArn": [lb]}
    )
    return stack


def test_alb_plaintext_listeners_only_on_internal_balancers_reached_from_security_groups() -> None:
    rule = edge.ALB_PLAINTEXT_LISTENERS
    message = (
        "listener 'l' serves plain HTTP: its only default action must redirect to HTTPS (HTTP_301), unless its "
        "load balancer is internal and its security groups admit port 80 from other security groups only (no "
        "address ranges)."
    )
    assert found(rule, _plaintext_stack(internal=True, cidr=False)) == []
    assert found(rule, _plaintext_stack(internal=False, cidr=False, redirect=True)) == []
    assert found(rule, _plaintext_stack(internal=False, cidr=False)) == [message]
    assert found(rule, _plaintext_stack(internal=True, cidr=True)) == [message]
    to_http = _plaintext_stack(internal=False, cidr=False, redirect=True)
    to_http["l"].update(defaultActions=[{"type": "redirect", "redirect": {"protocol": "HTTP"}}])
    assert found(rule, to_http) == [message]


LB = "aws:lb/loadBalancer:LoadBalancer"
GOOD_LB = {
    "accessLogs": {"enabled": True, "bucket": "logs"},
    "dropInvalidHeaderFields": True,
    "enableDeletionProtection": True,
    "tags": tags("prod"),
}


def test_alb_settings_accept_a_hardened_load_balancer() -> None:
    for rule in (edge.ALB_ACCESS_LOGS, edge.ALB_DROP_INVALID_HEADER_FIELDS, edge.ALB_DELETION_PROTECTION_IN_PRODUCTION):
        assert rule.run(make(LB, "alb", GOOD_LB)) == [], rule.name


def test_alb_access_logs() -> None:
    assert edge.ALB_ACCESS_LOGS.run(make(LB, "alb", {**GOOD_LB, "accessLogs": {"bucket": "logs"}})) == [
        "load balancer 'alb' does not write access logs (accessLogs: {enabled: true, bucket})."
    ]
    assert edge.ALB_ACCESS_LOGS.run(make(LB, "nlb", {"loadBalancerType": "network"})) == []


def test_alb_drop_invalid_header_fields() -> None:
    assert edge.ALB_DROP_INVALID_HEADER_FIELDS.run(make(LB, "alb", {**GOOD_LB, "dropInvalidHeaderFields": False})) == [
        "load balancer 'alb' forwards invalid HTTP headers (dropInvalidHeaderFields: true)."
    ]


def test_alb_deletion_protection_in_production() -> None:
    rule = edge.ALB_DELETION_PROTECTION_IN_PRODUCTION
    assert rule.run(make(LB, "alb", {**GOOD_LB, "enableDeletionProtection": False})) == [
        "load balancer 'alb' has no deletion protection in production (Environment=prod; enableDeletionProtection: "
        "true)."
    ]
    assert rule.run(make(LB, "alb", {**GOOD_LB, "enableDeletionProtection": False, "tags": tags("dev")})) == []


def test_alb_waf_association() -> None:
    rule = edge.ALB_WAF_ASSOCIATION
    assert found(rule, platform()) == []
    stack = platform()
    stack.add(LB, "second", {"internal": False})
    stack.add(LB, "private", {"internal": True})
    literal = stack.add(LB, "literal", {"arn": arn("elasticloadbalancing", "loadbalancer/app/literal/2")})
    stack.add("aws:wafv2/webAclAssociation:WebAclAssociation", "waf-literal", {"resourceArn": literal.raw["arn"]})
    assert found(rule, stack) == [
        "internet-facing load balancer 'second' is not associated with a WAFv2 web ACL "
        "(aws:wafv2/webAclAssociation:WebAclAssociation)."
    ]


STAGE = "aws:apigatewayv2/stage:Stage"


def test_apigw_stage_access_logs() -> None:
    rule = edge.APIGW_STAGE_ACCESS_LOGS
    assert rule.run(make(STAGE, "s", {"accessLogSettings": {"destinationArn": "a", "format": "f"}})) == []
    assert rule.run(make(STAGE, "s", {"accessLogSettings": {"destinationArn": "a"}})) == [
        "API Gateway stage 's' writes no access logs (accessLogSettings.destinationArn and accessLogSettings.format)."
    ]


def test_apigw_stage_throttling() -> None:
    rule = edge.APIGW_STAGE_THROTTLING
    good = {"defaultRouteSettings": {"throttlingRateLimit": 50, "throttlingBurstLimit": 100}}
    assert rule.run(make(STAGE, "s", good)) == []
    assert rule.run(make(STAGE, "s", {"defaultRouteSettings": {"throttlingRateLimit": 50}})) == [
        "API Gateway stage 's' has no default throttling (defaultRouteSettings.throttlingRateLimit and "
        "throttlingBurstLimit > 0)."
    ]


# ==================================================================================================
# Network
# ==================================================================================================
PUBLIC = network.SECURITY_GROUP_NO_PUBLIC_INGRESS


def test_public_ingress_accepts_80_and_443_on_the_public_load_balancer_only() -> None:
    assert found(PUBLIC, platform()) == []


def test_public_ingress_rejects_the_internet_on_a_service_group() -> None:
    stack = platform()
    stack["payment-sg"].update(ingress=[{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}])
    assert found(PUBLIC, stack) == [
        "security group rule 'payment-sg' opens port 22 of 'payment-sg' to 0.0.0.0/0; only the public load "
        "balancer's security group (Edge component or tag Exposure=public) may be open to the internet."
    ]


def test_public_ingress_rejects_other_ports_on_the_public_load_balancer() -> None:
    stack = platform()
    stack.add(
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "alb-admin",
        {"type": "ingress", "protocol": "tcp", "fromPort": 8000, "toPort": 8080, "ipv6CidrBlocks": ["::/0"]},
        deps={"securityGroupId": [stack["alb-sg"]]},
    )
    assert found(PUBLIC, stack) == [
        "security group rule 'alb-admin' opens ports 8000-8080 of 'alb-sg' to ::/0; only ports 80, 443 of the "
        "public load balancer's group may be open to the internet."
    ]


def test_public_ingress_recognises_the_public_group_by_tag_and_by_the_rule_s_own_place() -> None:
    stack = platform()
    tagged = stack.add(SG, "cdn-sg", {"tags": tags(Exposure="public")})
    stack.add(
        INGRESS,
        "cdn-https",
        {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp"},
        deps={"securityGroupId": [tagged]},
    )
    stack.add(
        INGRESS,
        "edge-literal",
        {"cidrIpv4": "0.0.0.0/0", "fromPort": 80, "toPort": 80, "ipProtocol": "tcp", "securityGroupId": "sg-0123"},
        parent=stack["edge"],
    )
    stack.add(
        INGRESS,
        "orphan",
        {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp", "securityGroupId": "sg-0456"},
    )
    assert found(PUBLIC, stack) == [
        "security group rule 'orphan' opens port 443 of its security group to 0.0.0.0/0; only the public load "
        "balancer's security group (Edge component or tag Exposure=public) may be open to the internet."
    ]


FLOW_LOGS = network.VPC_FLOW_LOGS


def test_vpc_flow_logs() -> None:
    assert found(FLOW_LOGS, platform()) == []
    stack = platform()
    stack.add("awsx:ec2:Vpc", "vpc-2", {"vpcId": "vpc-0def"})
    raw = stack.add("aws:ec2/vpc:Vpc", "vpc-3", {"cidrBlock": "10.3.0.0/16"})
    assert found(FLOW_LOGS, stack) == [
        "VPC 'vpc-2' has no flow log (aws:ec2/flowLog:FlowLog with vpcId = this VPC).",
        "VPC 'vpc-3' has no flow log (aws:ec2/flowLog:FlowLog with vpcId = this VPC).",
    ]
    stack.add("aws:ec2/flowLog:FlowLog", "log-2", {"vpcId": "vpc-0def"})
    stack.add("aws:ec2/flowLog:FlowLog", "log-3", {}, deps={"vpcId": [raw]})
    assert found(FLOW_LOGS, stack) == []


def test_vpc_flow_logs_count_the_awsx_vpc_and_its_inner_vpc_once() -> None:
    stack = platform()
    inner = stack.add("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"}, parent=stack["vpc"])
    stack["vpc-flow-log"].property_dependencies = {"vpcId": [inner]}
    assert found(FLOW_LOGS, stack) == []


# ==================================================================================================
# IAM and Secrets Manager
# ==================================================================================================
WILDCARDS = identity.IAM_NO_WILDCARD_PERMISSIONS


def _policy(*statements: dict[str, Any]) -> Any:
    return make(ROLE_POLICY, "p", {"policy": policy_document(*statements)})


def test_iam_no_wildcard_permissions_accepts_scoped_and_allow_listed_statements() -> None:
    scoped = allow(["dynamodb:GetItem"], arn("dynamodb", "table/dev-orders"))
    unscopable = allow(["xray:PutTraceSegments", "ecr:GetAuthorizationToken", "ssmmessages:*"], "*")
    deny_all = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    assert WILDCARDS.run(_policy(scoped, unscopable, deny_all)) == []


def test_iam_no_wildcard_permissions_rejects_each_wildcard() -> None:
    assert WILDCARDS.run(_policy(allow("*", arn("s3", "bucket")))) == [
        "role policy 'p' allows every action (Action '*'); list the actions the service needs."
    ]
    assert WILDCARDS.run(_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": arn("s3", "b")})) == [
        "role policy 'p' allows every action but iam:* (NotAction); list the actions instead."
    ]
    assert WILDCARDS.run(_policy(allow(["s3:GetObject", "xray:PutTraceSegments"], "*"))) == [
        "role policy 'p' allows s3:GetObject on every resource (Resource '*'); scope them to the ARNs the service "
        "needs."
    ]
    assert WILDCARDS.run(_policy(allow("xray:PutTraceSegments", "*")), {"unscopedActions": []}) != []


def test_iam_no_wildcard_permissions_reads_role_inline_policies_and_reports_bad_json() -> None:
    role = make(
        "aws:iam/role:Role", "r", {"inlinePolicies": [{"name": "inline", "policy": policy_document(allow("*", "*"))}]}
    )
    assert WILDCARDS.run(role) == [
        "inline policy 'inline' of role 'r' allows every action (Action '*'); list the actions the service needs.",
        "inline policy 'inline' of role 'r' allows * on every resource (Resource '*'); scope them to the ARNs the "
        "service needs.",
    ]
    assert WILDCARDS.run(make("aws:iam/policy:Policy", "bad", {"policy": "{"})) == [
        "IAM policy 'bad': the policy document is not valid JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1))."
    ]


def test_iam_no_admin_managed_policies() -> None:
    rule = identity.IAM_NO_ADMIN_MANAGED_POLICIES
    attachment = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert rule.run(make(attachment, "a", {"policyArn": admin})) == [
        f"role policy attachment 'a' attaches the AWS managed policy {admin}; grant only the actions the service needs."
    ]
    power = "arn:aws:iam::aws:policy/PowerUserAccess"
    assert rule.run(make("aws:iam/role:Role", "r", {"managedPolicyArns": [power]})) == [
        f"role 'r' attaches the AWS managed policy {power}; grant only the actions the service needs."
    ]
    own = f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess"
    assert rule.run(make(attachment, "a", {"policyArn": own})) == []
    assert rule.run(make(attachment, "a", {"policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})) == []


def test_secretsmanager_secret_cmk() -> None:
    rule = identity.SECRETSMANAGER_SECRET_CMK
    secret = "aws:secretsmanager/secret:Secret"
    message = (
        "secret 's' is encrypted with the AWS managed key aws/secretsmanager; set kmsKeyId to the environment's "
        "customer managed KMS key."
    )
    assert rule.run(make(secret, "s", {"kmsKeyId": arn("kms", "key/1")})) == []
    assert rule.run(make(secret, "s", {})) == [message]
    assert rule.run(make(secret, "s", {"kmsKeyId": "alias/aws/secretsmanager"})) == [message]


# ==================================================================================================
# Lambda and logs
# ==================================================================================================
FUNCTION = "aws:lambda/function:Function"


def test_lambda_tracing_active() -> None:
    rule = serverless.LAMBDA_TRACING_ACTIVE
    assert rule.run(make(FUNCTION, "f", {"tracingConfig": {"mode": "Active"}})) == []
    assert rule.run(make(FUNCTION, "f", {"tracingConfig": {"mode": "PassThrough"}})) == [
        "Lambda function 'f' does not trace with X-Ray (tracingConfig.mode is PassThrough, must be Active)."
    ]


def test_lambda_failure_destination() -> None:
    rule = serverless.LAMBDA_FAILURE_DESTINATION
    assert found(rule, platform()) == []
    stack = platform()
    stack["notification-invoke"].update(destinationConfig={"onSuccess": {"destination": "x"}})
    stack.add(FUNCTION, "with-dlq", {"deadLetterConfig": {"targetArn": arn("sqs", "dlq")}})
    polled = stack.add(FUNCTION, "poller", {})
    stack.add("aws:lambda/eventSourceMapping:EventSourceMapping", "poll", {}, deps={"functionName": [polled]})
    stack.add(FUNCTION, "named", {"name": "dev-named"})
    stack.add(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "named-invoke",
        {"functionName": "dev-named", "destinationConfig": {"onFailure": {"destination": "arn:dlq"}}},
    )
    assert found(rule, stack) == [
        "Lambda function 'notification-fn' loses failed asynchronous events: give it a deadLetterConfig or an "
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig with destinationConfig.onFailure."
    ]


def test_cloudwatch_log_group_retention() -> None:
    rule = observability.CLOUDWATCH_LOG_GROUP_RETENTION
    group = "aws:cloudwatch/logGroup:LogGroup"
    assert rule.run(make(group, "g", {"retentionInDays": 30})) == []
    assert rule.run(make(group, "g", {"retentionInDays": 0})) == [
        "log group 'g' keeps logs forever; set retentionInDays."
    ]
    assert rule.run(make(group, "g", {"retentionInDays": 3}), {"minimumRetentionDays": 7}) == [
        "log group 'g' keeps logs 3 days; retentionInDays must be at least 7."
    ]
    assert rule.run(make(group, "g", {"retentionInDays": 30}), {"requireKms": True}) == [
        "log group 'g' is not encrypted with a KMS key (kmsKeyId)."
    ]
