"""LambdaService (the notification function) under the offline mocks: packaging, runtime settings, least-privilege role,
SQS trigger with partial batch failures, async failure destination; and its wiring in every stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.notification import (
    CODE_DIR,
    CONTRACTS_DIR,
    LambdaService,
    LambdaServiceArgs,
    LambdaSettings,
    code_assets,
)
from model.spec import ServiceSpec, Subscription
from offline.mocks import ACCOUNT_ID
from offline.plan import Plan, PlannedResource
from services.notification.service import SPEC
from tests.conftest import TEST_CONTEXT, VARIANTS, catalog_of, only, preview, run_component

KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-4333-a444-555555555555"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:ms-test-notification-queue-1a2b3c4"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:ms-test-notifications-5d6e7f8"
SETTINGS = LambdaSettings.for_environment("dev")

FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"


def function_args(**overrides: Any) -> LambdaServiceArgs:
    values: dict[str, Any] = {
        "spec": SPEC,
        "settings": SETTINGS,
        "queue_arn": QUEUE_ARN,
        "topic_arn": TOPIC_ARN,
        "log_retention_days": 14,
        "tracing": True,
    }
    return LambdaServiceArgs(**{**values, **overrides})


@pytest.fixture(scope="module")
def plan() -> Plan:
    return run_component(lambda: LambdaService("ms-test-notification", function_args(), TEST_CONTEXT))


def statements(plan: Plan) -> dict[str, dict[str, Any]]:
    policy = json.loads(only(plan, ROLE_POLICY).inputs["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


# --- the function -------------------------------------------------------------------------------


def test_function_runtime_architecture_and_sizing(plan: Plan) -> None:
    function = only(plan, FUNCTION)
    role = only(plan, "aws:iam/role:Role")
    assert function.inputs["runtime"] == "python3.12", function.urn
    assert function.inputs["handler"] == "handler.handle", function.urn
    assert function.inputs["architectures"] == ["arm64"], function.urn
    assert function.inputs["role"] == role.outputs["arn"], function.urn
    assert function.inputs["memorySize"] == SETTINGS.memory_mb, function.urn
    assert function.inputs["timeout"] == SETTINGS.timeout_seconds, function.urn


def test_tracing_is_active_and_concurrency_reserved(plan: Plan) -> None:
    function = only(plan, FUNCTION)
    assert function.inputs["tracingConfig"] == {"mode": "Active"}, function.urn
    assert function.inputs["reservedConcurrentExecutions"] == 5, function.urn


def test_environment_is_encrypted_with_the_platform_key(plan: Plan) -> None:
    function = only(plan, FUNCTION)
    assert function.inputs["kmsKeyArn"] == KEY_ARN, function.urn
    assert function.inputs["environment"]["variables"] == {
        "NOTIFICATION_TOPIC_ARN": TOPIC_ARN,
        "LOG_LEVEL": "DEBUG",
        "POWERTOOLS_SERVICE_NAME": "notification",
    }, function.urn


def test_json_logs_go_to_its_own_encrypted_log_group_with_retention(plan: Plan) -> None:
    function = only(plan, FUNCTION)
    group = only(plan, "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == 14, group.urn
    assert group.inputs["kmsKeyId"] == KEY_ARN, group.urn
    assert function.inputs["loggingConfig"] == {
        "logFormat": "JSON",
        "logGroup": group.outputs["name"],
        "applicationLogLevel": "DEBUG",
        "systemLogLevel": "WARN",
    }, function.urn
    assert group.urn in function.dependencies, f"{function.urn}: must wait for its log group"


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_lambda_log_filter_never_drops_the_handlers_warnings(environment: str) -> None:
    # The handler logs level "WARNING", which Lambda's JSON filter reads as INFO: a WARN/ERROR
    # application filter would drop those lines.
    assert LambdaSettings.for_environment(environment).log_level in ("DEBUG", "INFO")


# --- least privilege --------------------------------------------------------------------------


def test_role_policy_names_exact_arns(plan: Plan) -> None:
    group = only(plan, "aws:cloudwatch/logGroup:LogGroup")
    failures = only(plan, "aws:sqs/queue:Queue", "ms-test-notification-failures-dlq")
    by_sid = statements(plan)
    expected = {
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], f"{group.outputs['arn']}:*"),
        "PublishNotifications": ("sns:Publish", TOPIC_ARN),
        "ConsumeOwnQueue": (["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], QUEUE_ARN),
        "RecordFailedInvocations": ("sqs:SendMessage", failures.outputs["arn"]),
        "UsePlatformKey": (["kms:Decrypt", "kms:GenerateDataKey"], KEY_ARN),
        "SendTraces": (["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
    }
    urn = only(plan, ROLE_POLICY).urn
    assert sorted(by_sid) == sorted(expected), urn
    for sid, (actions, resource) in expected.items():
        statement = by_sid[sid]
        assert statement["Effect"] == "Allow" and "Condition" not in statement, f"{urn}: {sid}"
        assert statement["Action"] == actions, f"{urn}: {sid} actions {statement['Action']}"
        assert statement["Resource"] == resource, f"{urn}: {sid} resource {statement['Resource']}"


def test_only_xray_uses_a_wildcard_resource_and_no_action_is_a_wildcard(plan: Plan) -> None:
    urn = only(plan, ROLE_POLICY).urn
    for sid, statement in statements(plan).items():
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            assert "*" not in action, f"{urn}: {sid} grants {action}"
        if statement["Resource"] == "*":
            assert sid == "SendTraces", f"{urn}: {sid} on every resource"


def test_role_is_assumable_by_lambda_only(plan: Plan) -> None:
    role = only(plan, "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ], role.urn
    assert only(plan, ROLE_POLICY).inputs["role"] == role.id, role.urn


def test_without_tracing_the_role_has_no_xray_grant() -> None:
    plan = run_component(lambda: LambdaService("n", function_args(tracing=False), TEST_CONTEXT))
    assert "SendTraces" not in statements(plan)
    function = only(plan, FUNCTION)
    assert function.inputs["tracingConfig"] == {"mode": "PassThrough"}, function.urn


# --- triggers ---------------------------------------------------------------------------------


def test_queue_trigger_reports_batch_item_failures(plan: Plan) -> None:
    mapping = only(plan, MAPPING)
    function = only(plan, FUNCTION)
    assert mapping.inputs["eventSourceArn"] == QUEUE_ARN, mapping.urn
    assert mapping.inputs["functionName"] == function.outputs["arn"], mapping.urn
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"], mapping.urn
    assert mapping.inputs["batchSize"] == SETTINGS.batch_size, mapping.urn
    assert mapping.inputs["maximumBatchingWindowInSeconds"] == SETTINGS.batching_window_seconds, mapping.urn
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 2}, mapping.urn
    assert only(plan, ROLE_POLICY).urn in mapping.dependencies, f"{mapping.urn}: created before its permissions"


def test_direct_invocation_failures_go_to_its_failure_queue(plan: Plan) -> None:
    config = only(plan, INVOKE_CONFIG)
    failures = only(plan, "aws:sqs/queue:Queue", "ms-test-notification-failures-dlq")
    assert config.inputs["functionName"] == only(plan, FUNCTION).outputs["name"], config.urn
    assert config.inputs["maximumRetryAttempts"] == 2, config.urn
    assert config.inputs["maximumEventAgeInSeconds"] == 3600, config.urn
    assert config.inputs["destinationConfig"] == {"onFailure": {"destination": failures.outputs["arn"]}}, config.urn
    assert only(plan, ROLE_POLICY).urn in config.dependencies, config.urn


def test_failure_queue_is_encrypted_tls_only_and_kept_14_days(plan: Plan) -> None:
    queue = only(plan, "aws:sqs/queue:Queue", "ms-test-notification-failures-dlq")
    assert queue.inputs["kmsMasterKeyId"] == KEY_ARN, queue.urn
    assert queue.inputs["messageRetentionSeconds"] == 14 * 86400, queue.urn
    policy = json.loads(only(plan, "aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue.outputs["arn"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ], queue.urn


def test_a_spec_with_queue_delivery_needs_its_queue() -> None:
    with pytest.raises(ValueError, match="subscribes with `queue` delivery: pass queue_arn"):
        run_component(lambda: LambdaService("n", function_args(queue_arn=None), TEST_CONTEXT))


def test_a_direct_only_spec_has_no_queue_trigger_or_queue_grant() -> None:
    direct_only = SPEC.model_copy(
        update={"subscribes": (Subscription(source="user", detail_types=("UserRegistered",), delivery="direct"),)}
    )
    plan = run_component(lambda: LambdaService("n", function_args(spec=direct_only, queue_arn=None), TEST_CONTEXT))
    assert plan.of_type(MAPPING) == []
    assert "ConsumeOwnQueue" not in statements(plan)


def test_a_fargate_spec_is_refused() -> None:
    fargate = ServiceSpec(name="order", description="x")
    with pytest.raises(ValueError, match="is a fargate service, not a Lambda"):
        run_component(lambda: LambdaService("n", function_args(spec=fargate, queue_arn=None), TEST_CONTEXT))


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_settings_follow_aws_guidance(environment: str) -> None:
    settings = LambdaSettings.for_environment(environment)
    assert settings.queue_visibility_timeout_seconds >= 6 * settings.timeout_seconds + settings.batching_window_seconds
    assert 2 <= settings.queue_max_concurrency < settings.reserved_concurrency
    assert settings.batch_size <= 10_000 and 0 <= settings.batching_window_seconds <= 300


def test_dev_is_the_smallest() -> None:
    sizes = {e: LambdaSettings.for_environment(e).reserved_concurrency for e in ("dev", "staging", "prod")}
    assert sizes["dev"] < sizes["staging"] < sizes["prod"]


def test_queue_concurrency_must_leave_room_for_direct_invocations() -> None:
    with pytest.raises(ValueError, match="below reserved_concurrency"):
        LambdaSettings(reserved_concurrency=2, queue_max_concurrency=2)


# --- packaging --------------------------------------------------------------------------------


def archive_paths(plan: Plan) -> set[str]:
    return set(only(plan, FUNCTION).inputs["code"]["assets"])


def test_package_is_the_handler_directory_with_its_contracts(plan: Plan) -> None:
    shipped = archive_paths(plan)
    schemas = {f"contracts/{p.relative_to(CONTRACTS_DIR).as_posix()}" for p in CONTRACTS_DIR.glob("schemas/*/v*.json")}
    assert {"handler.py", "contracts/__init__.py"} <= shipped, shipped
    assert schemas and schemas <= shipped, schemas - shipped
    assert not {"service.py", "__init__.py"} & shipped, shipped
    assert not any("__pycache__" in p or p.endswith(".pyc") or p.startswith("tests/") for p in shipped), shipped


def test_package_excludes_tests_caches_and_the_spec(tmp_path: Path) -> None:
    for relative in [
        "handler.py",
        "service.py",
        "__init__.py",
        "schemas/X/v1.json",
        "schemas/__init__.py",
        "tests/test_handler.py",
        "tests/conftest.py",
        "__pycache__/handler.cpython-312.pyc",
        "test_local.py",
        "helpers.pyc",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")
    own = sorted(p for p in code_assets(tmp_path) if not p.startswith("contracts/"))
    assert own == ["handler.py", "schemas/X/v1.json", "schemas/__init__.py"]


def test_the_shared_contracts_package_ships_beside_the_handler_and_may_not_be_shadowed(tmp_path: Path) -> None:
    shared = {p for p in code_assets(CODE_DIR) if p.startswith("contracts/")}
    assert {"contracts/__init__.py", "contracts/schemas/OrderPlaced/v2.json"} <= shared, shared
    (tmp_path / "handler.py").write_text("")
    (tmp_path / "contracts.py").write_text("")
    with pytest.raises(ValueError, match="has its own contracts module"):
        code_assets(tmp_path)


def test_a_directory_without_the_handler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no handler\.py"):
        code_assets(tmp_path)


def test_shipped_files_import_as_the_lambda_runtime_would(tmp_path: Path) -> None:
    """Unpack exactly what the archive holds and import `handler` from it, as a top-level module
    with nothing from this repository on the path (the Lambda runtime has boto3; so does this venv)."""
    for relative, asset in code_assets(CODE_DIR).items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(asset.path, target)  # type: ignore[union-attr]
    root = str(Path(__file__).resolve().parent.parent)
    probe = (
        "import sys, importlib.util;"
        f"sys.path = [p for p in sys.path if p not in ('', {root!r})]; sys.path.insert(0, '.');"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in str(getattr(f, '__module__', ''))];"
        "assert importlib.util.find_spec('services') is None, 'the repository is importable';"
        "import handler; print(handler.contracts.__file__, len(handler.contracts.KNOWN_CONTRACTS))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    contracts_file, count = result.stdout.split()
    assert Path(contracts_file).resolve() == (tmp_path / "contracts" / "__init__.py").resolve()
    assert int(count) == len(list(CONTRACTS_DIR.glob("schemas/*/v*.json")))


# --- wiring in the real stacks ------------------------------------------------------------------


def stack_function(plan: Plan) -> PlannedResource:
    return only(plan, FUNCTION, "ms-" + plan.stack + "-notification-function")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_stack_wires_the_function_to_its_queue_topic_and_rules(variant: str) -> None:
    plan = preview(variant).plan
    stack = plan.stack
    catalog = catalog_of(variant)
    function = stack_function(plan)
    settings = LambdaSettings.for_environment(stack)
    topic = only(plan, "aws:sns/topic:Topic", f"ms-{stack}-notifications")
    queue = only(plan, "aws:sqs/queue:Queue", f"ms-{stack}-notification-queue")
    mapping = only(plan, MAPPING, f"ms-{stack}-notification-queue-trigger")
    role = only(plan, "aws:iam/role:Role", f"ms-{stack}-notification-role")

    assert function.inputs["tracingConfig"] == {"mode": "Active"}, function.urn
    assert function.inputs["reservedConcurrentExecutions"] == settings.reserved_concurrency, function.urn
    assert function.inputs["environment"]["variables"]["NOTIFICATION_TOPIC_ARN"] == topic.outputs["arn"], function.urn
    assert mapping.inputs["eventSourceArn"] == queue.outputs["arn"], mapping.urn
    # AWS guidance for an SQS event source: visibility >= 6x the function timeout (+ batching window).
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * function.inputs["timeout"] + mapping.inputs.get(
        "maximumBatchingWindowInSeconds", 0
    ), queue.urn

    topic_policy = json.loads(only(plan, "aws:sns/topicPolicy:TopicPolicy", "-notifications-policy").inputs["policy"])
    allows = [s for s in topic_policy["Statement"] if s["Effect"] == "Allow"]
    assert [a["Principal"] for a in allows] == [{"AWS": [role.outputs["arn"]]}], topic.urn

    permissions = plan.of_type("aws:lambda/permission:Permission")
    assert {p.inputs["function"] for p in permissions} == {function.outputs["name"]}
    # One rule (with one target) per subscription in the catalogue; one invoke permission per direct one.
    # The bus's own rules (read models declare theirs inside their owner: components/patterns/readmodel.py).
    rules = {
        t.inputs["rule"]
        for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
        if "microservices:readmodel:ReadModel$" not in t.urn
    }
    subscriptions = [sub for spec in catalog for sub in spec.subscribes]
    assert len(rules) == len(subscriptions)
    assert len(permissions) == sum(sub.delivery == "direct" for sub in subscriptions) > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_stack_exports_the_bus_and_topic(variant: str) -> None:
    result = preview(variant).plan
    stack = result.stack
    bus = only(result, "aws:cloudwatch/eventBus:EventBus")
    topic = only(result, "aws:sns/topic:Topic", f"ms-{stack}-notifications")
    assert result.outputs["eventBusName"] == bus.outputs["name"], bus.urn
    assert result.outputs["notificationTopicArn"] == topic.outputs["arn"], topic.urn
