"""The access model and the rules over it, on small fake stacks (fast; the corpus runs the real program).

Also: the pack stays installable on its own (it imports nothing of the program), the constants it
copies from the program agree with the program's, and the AWS-managed policy snapshot is usable.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

from guardrails import access, baseline, containers, identity, mesh, ownership
from guardrails.core import Finding

from tests.conftest import parse_python
from tests.policy_fixtures import (
    INGRESS,
    ROLE_POLICY,
    TASK_DEFINITION,
    Stack,
    allow,
    arn,
    container_definitions,
    make,
    platform,
    policy_document,
)

ROOT = Path(__file__).resolve().parent.parent
ORDERS_TABLE = "Database 'orders-table' (DynamoDB table) owned by service 'orders'"
PAYMENT_CACHE = "Database 'payment-cache' (ElastiCache replication group) owned by service 'payment'"


def messages(rule: Any, stack: Stack) -> list[str]:
    return [f.message for f in rule.run(stack.resources)]


# --------------------------------------------------------------------------------------------------
# The pack on its own.
# --------------------------------------------------------------------------------------------------
def test_the_pack_imports_nothing_of_the_program_and_requires_what_it_imports() -> None:
    program_packages = {"components", "services", "offline", "tests", "benchmarks"}
    distributions = {"pulumi_policy": "pulumi-policy", "pulumi": "pulumi", "yaml": "PyYAML"}
    imported: set[str] = set()
    for path in (ROOT / "policies").rglob("*.py"):
        tree = parse_python(path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in program_packages, f"{path}: imports {name}"
                imported.add(top)
    third_party = imported - set(sys.stdlib_module_names) - {"guardrails", "__future__"}
    assert third_party <= set(distributions), third_party
    requirements = {r.split("==")[0] for r in (ROOT / "policies" / "requirements.txt").read_text().split()}
    assert {distributions[m] for m in third_party} <= requirements


def test_constants_copied_from_the_program_agree() -> None:
    from components import envoy
    from components import mesh as mesh_component

    assert mesh.MESH_CA_ENV == envoy.CA_BUNDLE_ENV
    assert mesh.SIDECAR == mesh_component.ENVOY_CONTAINER
    assert mesh.MTLS_REQUIRED.settings()["meshPort"] == envoy.MESH_PORT
    assert mesh.MTLS_REQUIRED.settings()["edgePort"] == envoy.EDGE_PORT


def test_the_managed_policy_snapshot_is_dated_and_parses() -> None:
    date, documents = access.managed_policy_snapshot()
    assert date == json.loads(access.SNAPSHOT_FILE.read_text())["snapshotDate"]
    assert {"AmazonDynamoDBReadOnlyAccess", "AWSLambdaBasicExecutionRole"} <= set(documents)
    from guardrails.documents import parse_policy

    for document in documents.values():
        assert parse_policy(document)
    assert access.aws_managed_policy_name("arn:aws:iam::aws:policy/service-role/AWSLambdaRole") == "AWSLambdaRole"
    assert access.aws_managed_policy_name(f"arn:aws:iam::{'1' * 12}:policy/mine") is None


def test_globs_intersect_reads_holes_and_suffixes() -> None:
    sub, hole = access.SUB, "\x00"
    assert access.globs_intersect("table/t/index/*", f"table/t/{sub}")
    assert access.globs_intersect("table/t/stream/2026-01-01T00:00:00.000", f"table/t/{sub}")
    assert not access.globs_intersect("table/other/index/*", f"table/t/{sub}")
    assert access.globs_intersect("table/*", f"table/{hole}")
    assert not access.globs_intersect("table/orders", f"table/{hole}")  # only * covers an unknown name
    assert access.globs_intersect("dbuser:*/app", f"dbuser:db-ABC/{sub}")


# --------------------------------------------------------------------------------------------------
# no-shared-databases over the model.
# --------------------------------------------------------------------------------------------------
def _role(stack: Stack, name: str) -> Any:
    role = stack[name]
    role.update(arn=f"arn:aws:iam::123456789012:role/{name}-abc", name=f"{name}-abc")
    return role


def test_compute_running_as_another_service_s_role_reaches_its_database() -> None:
    stack = platform()
    orders_role = _role(stack, "orders-task-role")
    stack["payment-task"].update(taskRoleArn=orders_role.raw["arn"])  # a literal copy-pasted ARN
    assert messages(ownership.NO_SHARED_DATABASES, stack) == [
        f"{ORDERS_TABLE} is shared with service 'payment': aws:iam/rolePolicy:RolePolicy 'orders-task-policy' grants "
        f"dynamodb:GetItem, dynamodb:PutItem, dynamodb:Query on {arn('dynamodb', 'table/dev-orders')} to role "
        "'orders-task-role', and task definition 'payment-task' (run by ECS service 'payment-service') runs as role "
        "'orders-task-role' (taskRoleArn)"
    ]


def test_aws_managed_policies_come_from_the_snapshot_and_unknown_ones_could_grant_anything() -> None:
    stack = platform()
    role = stack["payment-task-role"]
    role.update(managedPolicyArns=["arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"])
    assert messages(ownership.NO_SHARED_DATABASES, stack) == []
    role.update(managedPolicyArns=["arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"])
    assert messages(ownership.NO_SHARED_DATABASES, stack) == [
        f"{ORDERS_TABLE} is shared with service 'payment': AWS managed policy "
        "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess grants dynamodb:BatchGetItem, dynamodb:Describe*, "
        "dynamodb:List*, dynamodb:GetItem, dynamodb:GetResourcePolicy, dynamodb:Query, dynamodb:Scan, "
        "dynamodb:PartiQLSelect on *"
    ]
    role.update(managedPolicyArns=["arn:aws:iam::aws:policy/AmazonSomethingNew"])
    found = messages(ownership.NO_SHARED_DATABASES, stack)
    assert len(found) == 2  # the orders table and the inventory database (payment owns the cache)
    assert all("AmazonSomethingNew (unknown to the pack's snapshot of" in m for m in found)


def test_resource_policies_and_prefix_lists_and_memberships_are_paths() -> None:
    stack = platform()
    _role(stack, "payment-task-role")
    stack.add(
        "aws:dynamodb/resourcePolicy:ResourcePolicy",
        "orders-share",
        {
            "policy": policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:role/payment-task-role-abc"},
                    "Action": "dynamodb:GetItem",
                    "Resource": "*",
                }
            )
        },
        parent=stack["orders"],
        deps={"resourceArn": [stack["orders-table"]]},
    )
    stack.add(
        INGRESS,
        "cache-from-vpn",
        {"fromPort": 6379, "toPort": 6379, "ipProtocol": "tcp", "prefixListId": "pl-0123"},
        deps={"securityGroupId": [stack["payment-cache-sg"]]},
    )
    stack.add(
        "aws:lambda/function:Function",
        "orders-cache-warmer",
        {"tracingConfig": {"mode": "Active"}},
        parent=stack["orders"],
        deps={"vpcConfig": [stack["payment-sg"]]},
    )
    assert sorted(messages(ownership.NO_SHARED_DATABASES, stack)) == [
        f"{ORDERS_TABLE} is shared with service 'payment': aws:dynamodb/resourcePolicy:ResourcePolicy 'orders-share' "
        "allows dynamodb:GetItem to role 'payment-task-role'",
        f"{PAYMENT_CACHE} is reachable from outside its owner: security group rule 'cache-from-vpn' lets managed "
        "prefix list pl-0123 into the database's security group 'payment-cache-sg'",
        f"{PAYMENT_CACHE} is shared with service 'orders': security group rule 'payment-cache-from-payment' lets "
        "security group 'payment-sg' into the database's security group 'payment-cache-sg' (its Lambda function "
        "'orders-cache-warmer' is attached to 'payment-sg')",
    ]


def test_a_queue_policy_of_a_store_member_is_a_path() -> None:
    stack = platform()
    _role(stack, "payment-task-role")
    feed = stack.add("aws:sqs/queue:Queue", "orders-feed", {"sqsManagedSseEnabled": True}, parent=stack["orders-data"])
    stack.add(
        "aws:sqs/queuePolicy:QueuePolicy",
        "orders-feed-policy",
        {
            "policy": policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:role/payment-task-role-abc"},
                    "Action": "sqs:ReceiveMessage",
                    "Resource": "*",
                }
            )
        },
        parent=stack["orders"],
        deps={"queueUrl": [feed]},
    )
    assert messages(ownership.NO_SHARED_DATABASES, stack) == [
        f"{ORDERS_TABLE} is shared with service 'payment': aws:sqs/queuePolicy:QueuePolicy 'orders-feed-policy' "
        "allows sqs:ReceiveMessage to role 'payment-task-role'"
    ]


def test_literal_endpoints_in_another_service_s_values_are_paths() -> None:
    stack = platform()
    stack["payment-cache"].update(primaryEndpointAddress="master.dev-payment.abc123.use1.cache.amazonaws.com")
    stack["orders-task"].update(
        containerDefinitions=container_definitions(
            "orders",
            None,
            environment=[
                {"name": "CACHE", "value": "rediss://master.dev-payment.abc123.use1.cache.amazonaws.com:6379"}
            ],
        )
    )
    assert messages(ownership.NO_SHARED_DATABASES, stack) == [
        f"{PAYMENT_CACHE} is shared with service 'orders': environment variable 'CACHE' of container 'app' of task "
        "definition 'orders-task' (run by ECS service 'orders-service') holds its endpoint "
        "'master.dev-payment.abc123.use1.cache.amazonaws.com'"
    ]


def test_a_literal_name_in_another_service_s_config_is_a_path() -> None:
    stack = platform()
    settings = stack.add(
        "aws:ssm/parameter:Parameter", "payment-settings", {"value": "region=eu-west-1"}, parent=stack["payment"]
    )
    assert messages(ownership.NO_SHARED_DATABASES, stack) == []
    settings.update(value="table=dev-orders;region=eu-west-1")
    assert messages(ownership.NO_SHARED_DATABASES, stack) == [
        f"{ORDERS_TABLE} is shared with service 'payment': value of SSM parameter 'payment-settings' holds its name "
        "'dev-orders'"
    ]
    settings.update(value="table=dev-orders-archive")  # another table: names are matched whole
    assert messages(ownership.NO_SHARED_DATABASES, stack) == []


def test_privilege_escalation_through_pass_role_and_assume_role() -> None:
    stack = platform()
    _role(stack, "orders-task-role")
    stack.add(
        ROLE_POLICY,
        "payment-runner",
        {"policy": policy_document(allow("iam:PassRole", "arn:aws:iam::*:role/*"), allow("ecs:RunTask", "*"))},
        parent=stack["payment"],
        deps={"role": [stack["payment-task-role"]]},
    )
    found = messages(baseline.IAM_NO_PRIVILEGE_ESCALATION, stack)
    assert (
        "role 'payment-task-role': aws:iam/rolePolicy:RolePolicy 'payment-runner' allows iam:PassRole on "
        "arn:aws:iam::*:role/* and ecs:RunTask: whoever runs as it can start compute as any role of the account, "
        "and so reach any service's data."
    ) in found
    assert any(
        m.startswith("role 'payment-task-role' (run by 'payment') can become role 'orders-task-role'") for m in found
    )
    shared = messages(ownership.NO_SHARED_DATABASES, stack)
    assert any(
        m.startswith(f"{ORDERS_TABLE} is shared with service 'payment'") and "can become role 'orders-task-role'" in m
        for m in shared
    ), shared


# --------------------------------------------------------------------------------------------------
# mtls-required: meaning, not presence.
# --------------------------------------------------------------------------------------------------
def _payment_envoy(stack: Stack) -> dict[str, Any]:
    definitions = json.loads(stack["payment-task"].raw["containerDefinitions"])
    return json.loads(next(c for c in definitions if c["name"] == "envoy")["command"][1])


def _set_payment_envoy(stack: Stack, envoy: dict[str, Any]) -> None:
    stack["payment-task"].update(containerDefinitions=container_definitions("payment", envoy))


def test_mtls_checks_the_default_filter_chain_and_trust() -> None:
    stack = platform()
    envoy = _payment_envoy(stack)
    inbound = envoy["static_resources"]["listeners"][0]
    inbound["default_filter_chain"] = {"filters": inbound["filter_chains"][0]["filters"]}
    validation = inbound["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"][
        "validation_context"
    ]
    validation["trust_chain_verification"] = "ACCEPT_UNTRUSTED"
    _set_payment_envoy(stack, envoy)
    assert messages(mesh.MTLS_REQUIRED, stack) == [
        "service 'payment': listener 'inbound_mesh' on 0.0.0.0:15443 sets trust_chain_verification: "
        "ACCEPT_UNTRUSTED: client certificates are not verified (any certificate is accepted).",
        "service 'payment': listener 'inbound_mesh' on 0.0.0.0:15443 default_filter_chain accepts plaintext: its "
        "filter chain has no DownstreamTlsContext transport socket.",
    ]


def test_mtls_rejects_loose_matchers_and_callers_that_do_not_call() -> None:
    stack = platform()
    envoy = _payment_envoy(stack)
    tls = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]["typed_config"]
    tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] = [
        {"san_type": "URI", "matcher": {"exact": "spiffe://microservices.internal/dev/orders"}},
        {"san_type": "URI", "matcher": {"exact": "spiffe://microservices.internal/dev/inventory"}},
        {"san_type": "URI", "matcher": {"suffix": "/orders"}},
    ]
    _set_payment_envoy(stack, envoy)
    assert messages(mesh.MTLS_REQUIRED, stack) == [
        "service 'payment': listener 'inbound_mesh' on 0.0.0.0:15443 matches client SANs with "
        '{"suffix": "/orders"}: only exact SPIFFE ids name one caller.',
        "service 'payment': its Envoy accepts the caller 'inventory', which declares no call to it; the callers it "
        "accepts (RBAC principals and SAN matchers) must be exactly the services that call it.",
    ]


def test_mtls_follows_attachment_to_another_service_s_group() -> None:
    stack = platform()
    # inventory's ECS service also joins the orders group, which payment admits on the mesh port:
    stack["inventory-service"].property_dependencies["networkConfiguration"].append(stack["orders-sg"])
    found = messages(mesh.MTLS_REQUIRED, stack)
    assert found == [
        "security group rule 'payment-from-orders' opens the mesh port 15443 of service 'payment' to service "
        "'inventory' (security group 'orders-sg', its ECS service 'inventory-service' being attached to it), a caller "
        "its Envoy does not accept; open the mesh port only to the callers the service accepts.",
    ]


def test_mtls_transport_rules() -> None:
    stack = platform()
    stack["payment-cache"].update(transitEncryptionMode="preferred")
    stack.add("aws:sns/topicSubscription:TopicSubscription", "hook", {"protocol": "http", "endpoint": "http://x"})
    stack.add(
        "aws:sns/topicSubscription:TopicSubscription", "safe-hook", {"protocol": "https", "endpoint": "https://x"}
    )
    assert messages(mesh.MTLS_REQUIRED, stack) == [
        "ElastiCache replication group 'payment-cache' does not require TLS (transitEncryptionEnabled True, "
        "transitEncryptionMode preferred); set transitEncryptionMode 'required' so that no client connects in "
        "plaintext.",
        "SNS subscription 'hook' delivers over plain HTTP to http://x; use https.",
    ]


# --------------------------------------------------------------------------------------------------
# False positives fixed, baseline rules.
# --------------------------------------------------------------------------------------------------
def test_unscopable_discover_instances_and_harmless_env_names_pass() -> None:
    rule = identity.IAM_NO_WILDCARD_PERMISSIONS
    policy = make(ROLE_POLICY, "p", {"policy": policy_document(allow("servicediscovery:DiscoverInstances", "*"))})
    assert rule.run(policy) == []
    task = make(
        TASK_DEFINITION,
        "t",
        {
            "containerDefinitions": container_definitions(
                "s",
                None,
                environment=[
                    {"name": "PASSWORD_MIN_LENGTH", "value": "12"},
                    {"name": "TOKEN_TTL_SECONDS", "value": "3600"},
                    {"name": "DB_PASSWORD", "value": "hunter2"},
                ],
            )
        },
    )
    assert containers.ECS_NO_PLAINTEXT_SECRETS.run(task) == [
        "container 'app' of task definition 't' passes 'DB_PASSWORD' as a plain environment value; inject it from "
        "Secrets Manager through `secrets` (valueFrom = the secret's ARN)."
    ]


def test_credentials_inside_values() -> None:
    assert baseline.credentials_in("postgresql://app:pw@db:5432/x") == ["a URL with a password"]
    assert baseline.credentials_in("https://api.example.com/v1?user=me") == []
    assert baseline.credentials_in("Server=db;User Id=app;Password=pw;") == ["a password in a connection string"]
    assert baseline.credentials_in("AKIAIOSFODNN7EXAMPLE") == ["an AWS access key id"]
    assert baseline.credentials_in("-----BEGIN RSA PRIVATE KEY-----") == ["a PEM private key"]
    function = make(
        "aws:lambda/function:Function", "f", {"environment": {"variables": {"DSN": "mysql://u:p@h/d", "HOST": "h"}}}
    )
    assert baseline.NO_CREDENTIALS_IN_VALUES.run(function) == [
        "environment variable 'DSN' of Lambda function 'f' holds a URL with a password in a plain value; put the "
        "credential in Secrets Manager and inject it (ECS `secrets` / the Lambda reads it at start), keeping only "
        "the host in the value."
    ]


def test_s3_bucket_baseline() -> None:
    stack = Stack()
    bucket = stack.add("aws:s3/bucket:Bucket", "logs", {"bucket": "logs-1", "arn": "arn:aws:s3:::logs-1"})
    assert [f.message.split(" (")[0] for f in baseline.S3_BUCKET_BASELINE.run(stack.resources)] == [
        "S3 bucket 'logs' does not block public access",
        "S3 bucket 'logs' has no default encryption",
        "S3 bucket 'logs' has no bucket policy denying requests without TLS on its own ARN",
    ]
    flags = dict.fromkeys(baseline.BLOCK_SETTINGS, True)
    stack.add(baseline.PUBLIC_ACCESS_BLOCK, "logs-pab", flags, deps={"bucket": [bucket]})
    stack.add(baseline.BUCKET_ENCRYPTION[0], "logs-sse", {"rules": [{}]}, deps={"bucket": [bucket]})
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::logs-1", "arn:aws:s3:::logs-1/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    policy = stack.add(
        baseline.BUCKET_POLICY, "logs-policy", {"policy": policy_document(deny)}, deps={"bucket": [bucket]}
    )
    assert baseline.S3_BUCKET_BASELINE.run(stack.resources) == []
    policy.update(policy=policy_document({**deny, "Resource": "arn:aws:s3:::other/*"}))
    assert baseline.S3_BUCKET_BASELINE.run(stack.resources) == [
        Finding(
            "S3 bucket 'logs' has no bucket policy denying requests without TLS on its own ARN (a Deny for Principal "
            "'*' on s3:* with Condition Bool aws:SecureTransport = false and Resource arn:aws:s3:::logs-1 and "
            "arn:aws:s3:::logs-1/*).",
            bucket.urn,
        )
    ]
