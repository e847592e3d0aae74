"""EventBus under the offline mocks: bus, archive, rules from the specs, queues, DLQs, policies, topic,
and the registry of versioned event contracts. Event patterns are also checked against a real
EventBridge matcher (moto's), with events that must and must not be delivered."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
import yaml
from moto import mock_aws

from components.context import PlatformContext
from components.events import (
    DLQ_RETENTION_SECONDS,
    EventBus,
    EventBusArgs,
    Route,
    _rule_name,
    routes_from_catalog,
)
from components.schema_registry import discover_contracts
from components.wiring import EventPublishers, EventPublishersArgs, FunctionRoutes, FunctionRoutesArgs
from contracts import SCHEMA_DIR
from contracts.draft4 import to_draft4
from model.config import EventsConfig
from model.errors import ConfigError
from model.spec import ServiceSpec, Subscription
from offline.mocks import ACCOUNT_ID
from offline.plan import Plan, PlannedResource
from services import load_catalog
from tests.conftest import ROOT, STACKS, VARIANTS, catalog_of, only, preview, run_component
from tests.notification_events import detail

KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-4333-a444-555555555555"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:notification-fn"
FUNCTION_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/notification-fn-role"
CATALOG = load_catalog()
PUBLISHERS = {s.name: s for s in CATALOG if s.publishes}
FIRST_PUBLISHER = min(PUBLISHERS)
QUEUE_CONSUMERS = sorted({s.name for s in CATALOG for sub in s.subscribes if sub.delivery == "queue"})
DIRECT_SUBSCRIPTIONS = sum(sub.delivery == "direct" for s in CATALOG for sub in s.subscribes)


def task_role(service: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{service}-task"


def bus_args(catalog: list[ServiceSpec] = CATALOG, **overrides: Any) -> EventBusArgs:
    values: dict[str, Any] = {
        "config": EventsConfig(archive_retention_days=45, max_receive_count=4),
        "catalog": catalog,
        "visibility_timeouts": {"notification": 185},
        "schema_dir": SCHEMA_DIR,
    }
    return EventBusArgs(**{**values, **overrides})


CONTEXT = PlatformContext(
    environment="test", account_id=ACCOUNT_ID, region="us-east-1", partition="aws", tags={"Environment": "test"}
).with_key(KEY_ARN)


def build_full_bus() -> None:
    """The bus, then its wiring (declared after it, as `build_platform` does)."""
    bus = EventBus("t", bus_args(), CONTEXT)
    FunctionRoutes(
        "t-notification-routes",
        FunctionRoutesArgs(bus=bus, service="notification", function_arn=FUNCTION_ARN, function_name="notification-fn"),
    )
    EventPublishers(
        "t-publishers",
        EventPublishersArgs(
            bus=bus,
            task_role_arns={name: task_role(name) for name in PUBLISHERS},
            topic_publisher_role_arns=[FUNCTION_ROLE],
        ),
    )


@pytest.fixture(scope="module")
def plan() -> Plan:
    return run_component(build_full_bus)


# --- helpers ----------------------------------------------------------------------------------


def policy_of(resource: PlannedResource) -> dict[str, Any]:
    return json.loads(resource.inputs["policy"])


def queues(plan: Plan, role: str) -> list[PlannedResource]:
    return [q for q in plan.of_type("aws:sqs/queue:Queue") if q.inputs["tags"].get("QueueRole") == role]


def queue_policy_for(plan: Plan, queue: PlannedResource) -> dict[str, Any]:
    policies = [
        p for p in plan.of_type("aws:sqs/queuePolicy:QueuePolicy") if p.inputs["queueUrl"] == queue.outputs["url"]
    ]
    assert len(policies) == 1, f"{queue.urn}: expected one queue policy, got {[p.urn for p in policies]}"
    return policy_of(policies[0])


def targets_dlq(plan: Plan) -> PlannedResource:
    return only(plan, "aws:sqs/queue:Queue", "t-targets-dlq")


def rule_by_name(plan: Plan) -> dict[str, PlannedResource]:
    return {r.outputs["name"]: r for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")}


def target_of(plan: Plan, rule: PlannedResource) -> PlannedResource:
    targets = [
        t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.inputs["rule"] == rule.outputs["name"]
    ]
    assert len(targets) == 1, f"{rule.urn}: expected exactly one target, got {[t.urn for t in targets]}"
    return targets[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- queues and dead-letter queues -----------------------------------------------------------------


def test_each_consumer_with_queue_delivery_gets_its_own_queue(plan: Plan) -> None:
    got = sorted(q.inputs["tags"]["Service"] for q in queues(plan, "consumer"))
    assert QUEUE_CONSUMERS, "the catalogue has queue consumers (else this test checks nothing)"
    assert got == QUEUE_CONSUMERS


def test_every_consumer_queue_redrives_to_its_own_dlq(plan: Plan) -> None:
    dlqs = {q.inputs["tags"]["Service"]: q for q in queues(plan, "dead-letter") if "Service" in q.inputs["tags"]}
    for queue in queues(plan, "consumer"):
        service = queue.inputs["tags"]["Service"]
        redrive = json.loads(queue.inputs["redrivePolicy"])
        assert service in dlqs, f"{queue.urn}: no DLQ for {service}"
        assert redrive == {"deadLetterTargetArn": dlqs[service].outputs["arn"], "maxReceiveCount": 4}, queue.urn


def test_every_dlq_keeps_messages_14_days_and_accepts_redrives_only_from_its_queue(plan: Plan) -> None:
    consumers = {q.inputs["tags"]["Service"]: q for q in queues(plan, "consumer")}
    allow = {p.inputs["queueUrl"]: p for p in plan.of_type("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")}
    for dlq in queues(plan, "dead-letter"):
        assert dlq.inputs["messageRetentionSeconds"] == DLQ_RETENTION_SECONDS == 14 * 86400, dlq.urn
        service = dlq.inputs["tags"].get("Service")
        if service is None:
            continue  # the targets' DLQ receives from EventBridge, not by redrive
        policy = allow.get(dlq.outputs["url"])
        assert policy is not None, f"{dlq.urn}: no redrive allow policy"
        assert json.loads(policy.inputs["redriveAllowPolicy"]) == {
            "redrivePermission": "byQueue",
            "sourceQueueArns": [consumers[service].outputs["arn"]],
        }, policy.urn


def test_every_queue_is_encrypted_with_the_platform_key(plan: Plan) -> None:
    all_queues = plan.of_type("aws:sqs/queue:Queue")
    assert len(all_queues) == 1 + 2 * len(QUEUE_CONSUMERS)  # targets DLQ + each consumer's queue and DLQ
    for queue in all_queues:
        assert queue.inputs.get("kmsMasterKeyId") == KEY_ARN, f"{queue.urn}: not SSE-KMS with the platform key"
        assert queue.inputs.get("kmsDataKeyReusePeriodSeconds") == 300, queue.urn
        assert not queue.inputs.get("sqsManagedSseEnabled"), queue.urn


def test_every_queue_denies_non_tls_access(plan: Plan) -> None:
    for queue in plan.of_type("aws:sqs/queue:Queue"):
        denies = [
            s
            for s in queue_policy_for(plan, queue)["Statement"]
            if s["Effect"] == "Deny"
            and s["Principal"] == "*"
            and s["Action"] == "sqs:*"
            and s["Resource"] == queue.outputs["arn"]
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denies) == 1, f"{queue.urn}: no TLS-only deny statement"


def test_consumer_queues_accept_sendmessage_only_from_the_rules_feeding_them(plan: Plan) -> None:
    rules = rule_by_name(plan)
    for queue in queues(plan, "consumer"):
        feeding = sorted(
            rules[t.inputs["rule"]].outputs["arn"]
            for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
            if t.inputs["arn"] == queue.outputs["arn"]
        )
        assert feeding, f"{queue.urn}: no rule targets this queue"
        allows = [s for s in queue_policy_for(plan, queue)["Statement"] if s["Effect"] == "Allow"]
        assert allows == [
            {
                "Sid": "AllowEventBridgeRules",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue.outputs["arn"],
                "Condition": {"ArnEquals": {"aws:SourceArn": feeding}},
            }
        ], queue.urn


def test_targets_dlq_accepts_only_this_bus_and_its_rules(plan: Plan) -> None:
    dlq = targets_dlq(plan)
    bus = only(plan, "aws:cloudwatch/eventBus:EventBus")
    allows = [s for s in queue_policy_for(plan, dlq)["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1, dlq.urn
    assert allows[0]["Principal"] == {"Service": "events.amazonaws.com"}, dlq.urn
    assert allows[0]["Action"] == "sqs:SendMessage", dlq.urn
    assert allows[0]["Condition"] == {
        "ArnLike": {
            "aws:SourceArn": [
                bus.outputs["arn"],
                f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/{bus.outputs['name']}/*",
            ]
        }
    }, dlq.urn


def test_lambda_consumer_queue_visibility_comes_from_the_function() -> None:
    plan = run_component(lambda: EventBus("t", bus_args(visibility_timeouts={"notification": 305}), CONTEXT))
    by_service = {q.inputs["tags"]["Service"]: q for q in queues(plan, "consumer")}
    assert by_service["notification"].inputs["visibilityTimeoutSeconds"] == 305, by_service["notification"].urn
    assert by_service["inventory"].inputs["visibilityTimeoutSeconds"] == 60, by_service["inventory"].urn


def test_a_lambda_consumer_without_a_visibility_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="Lambda consumer 'notification' needs its queue visibility timeout"):
        run_component(lambda: EventBus("t", bus_args(visibility_timeouts={}), CONTEXT))


# --- bus, archive, rules, targets ---------------------------------------------------------------


def test_bus_is_encrypted_with_the_platform_key_and_dead_lettered(plan: Plan) -> None:
    bus = only(plan, "aws:cloudwatch/eventBus:EventBus")
    assert bus.inputs["kmsKeyIdentifier"] == KEY_ARN, bus.urn
    assert bus.inputs["deadLetterConfig"] == {"arn": targets_dlq(plan).outputs["arn"]}, bus.urn


def test_archive_keeps_only_the_platform_sources_for_the_configured_days(plan: Plan) -> None:
    archive = only(plan, "aws:cloudwatch/eventArchive:EventArchive")
    bus = only(plan, "aws:cloudwatch/eventBus:EventBus")
    assert archive.inputs["eventSourceArn"] == bus.outputs["arn"], archive.urn
    assert archive.inputs["retentionDays"] == 45, archive.urn
    assert archive.inputs["kmsKeyIdentifier"] == KEY_ARN, archive.urn
    assert json.loads(archive.inputs["eventPattern"]) == {
        "source": sorted(spec.event_source for spec in PUBLISHERS.values())
    }, archive.urn


@pytest.mark.parametrize("stack", STACKS)
def test_archive_retention_follows_each_stack_config(stack: str) -> None:
    stack_doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    expected = stack_doc["config"]["microservices:events"]["archiveRetentionDays"]
    archive = only(preview(stack).plan, "aws:cloudwatch/eventArchive:EventArchive")
    assert archive.inputs["retentionDays"] == expected, archive.urn
    assert {"dev": 7, "staging": 30, "prod": 365}[stack] == expected


def expected_rules() -> set[tuple[str, tuple[str, ...], str, str]]:
    """(source, detail-types, consumer, delivery) for every subscription in the catalogue."""
    return {
        (f"microservices.{sub.source}", sub.detail_types, spec.name, sub.delivery)
        for spec in CATALOG
        for sub in spec.subscribes
    }


def test_one_rule_per_subscription_with_the_exact_pattern_and_target(plan: Plan) -> None:
    queue_arns = {q.inputs["tags"]["Service"]: q.outputs["arn"] for q in queues(plan, "consumer")}
    got = set()
    for rule in plan.of_type("aws:cloudwatch/eventRule:EventRule"):
        pattern = json.loads(rule.inputs["eventPattern"])
        assert set(pattern) == {"source", "detail-type"}, f"{rule.urn}: unexpected pattern keys {pattern}"
        assert len(pattern["source"]) == 1, rule.urn
        consumer = rule.inputs["tags"]["Service"]
        target = target_of(plan, rule)
        delivery = "queue" if target.inputs["arn"] == queue_arns.get(consumer) else "direct"
        if delivery == "direct":
            assert target.inputs["arn"] == FUNCTION_ARN, f"{target.urn}: direct target is not the function"
        assert rule.inputs["eventBusName"] == only(plan, "aws:cloudwatch/eventBus:EventBus").outputs["name"], rule.urn
        got.add((pattern["source"][0], tuple(pattern["detail-type"]), consumer, delivery))
    assert got == expected_rules()


def test_every_rule_target_retries_and_dead_letters(plan: Plan) -> None:
    targets = plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(plan.of_type("aws:cloudwatch/eventRule:EventRule")) == len(expected_rules())
    dlq_arn = targets_dlq(plan).outputs["arn"]
    for target in targets:
        assert target.inputs.get("deadLetterConfig") == {"arn": dlq_arn}, f"{target.urn}: no DLQ"
        retry = target.inputs.get("retryPolicy", {})
        assert 60 <= retry.get("maximumEventAgeInSeconds", 0) <= 86400, f"{target.urn}: retry max age {retry}"
        assert 0 < retry.get("maximumRetryAttempts", 0) <= 185, f"{target.urn}: retry attempts {retry}"


def test_direct_rules_invoke_the_function_through_permissions_scoped_to_each_rule(plan: Plan) -> None:
    direct_rules = sorted(
        r.outputs["arn"]
        for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
        if target_of(plan, r).inputs["arn"] == FUNCTION_ARN
    )
    permissions = plan.of_type("aws:lambda/permission:Permission")
    assert sorted(p.inputs["sourceArn"] for p in permissions) == direct_rules
    assert len(direct_rules) == DIRECT_SUBSCRIPTIONS > 0
    for permission in permissions:
        assert permission.inputs["principal"] == "events.amazonaws.com", permission.urn
        assert permission.inputs["action"] == "lambda:InvokeFunction", permission.urn
        assert permission.inputs["function"] == "notification-fn", permission.urn


def test_routes_merge_duplicate_subscriptions_into_one_rule() -> None:
    consumer = ServiceSpec(
        name="audit",
        description="x",
        subscribes=(
            Subscription(source="order", detail_types=("OrderPlaced",)),
            Subscription(source="order", detail_types=("OrderCancelled", "OrderPlaced")),
        ),
    )
    assert routes_from_catalog([consumer]) == [Route("audit", "order", "queue", ("OrderPlaced", "OrderCancelled"))]


def test_long_rule_names_leave_room_for_the_random_suffix() -> None:
    long = "ms-staging-" + "a" * 22 + "-" + "b" * 22 + "-direct"
    shortened = _rule_name(long)
    assert len(shortened) + 8 <= 64
    assert shortened != _rule_name(long.replace("b", "c"))
    assert _rule_name("ms-dev-inventory-order") == "ms-dev-inventory-order"


# --- bus resource policy and topic ------------------------------------------------------------


def bus_policy(plan: Plan) -> dict[str, Any]:
    return policy_of(only(plan, "aws:cloudwatch/eventBusPolicy:EventBusPolicy"))


def test_bus_policy_names_each_publisher_role_and_never_a_wildcard(plan: Plan) -> None:
    resource = only(plan, "aws:cloudwatch/eventBusPolicy:EventBusPolicy")
    bus = only(plan, "aws:cloudwatch/eventBus:EventBus")
    assert resource.inputs["eventBusName"] == bus.outputs["name"], resource.urn
    for statement in bus_policy(plan)["Statement"]:
        principal = statement["Principal"]
        assert principal != "*" and "*" not in json.dumps(principal), f"{resource.urn}: wildcard principal {statement}"
        assert isinstance(principal, dict) and list(principal) == ["AWS"], resource.urn
        assert principal["AWS"] in {task_role(s) for s in PUBLISHERS}, f"{resource.urn}: unknown principal {principal}"
        assert principal["AWS"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:role/"), resource.urn
        assert statement["Action"] == "events:PutEvents", resource.urn
        assert statement["Resource"] == bus.outputs["arn"], resource.urn


def test_bus_policy_lets_each_publisher_put_only_its_own_source_and_types(plan: Plan) -> None:
    statements = bus_policy(plan)["Statement"]
    for name, spec in PUBLISHERS.items():
        mine = [s for s in statements if s["Principal"] == {"AWS": task_role(name)}]
        allows = [s for s in mine if s["Effect"] == "Allow"]
        denies = [s for s in mine if s["Effect"] == "Deny"]
        assert allows == [
            {
                "Sid": f"Publish{name.capitalize()}",
                "Effect": "Allow",
                "Principal": {"AWS": task_role(name)},
                "Action": "events:PutEvents",
                "Resource": allows[0]["Resource"],
                "Condition": {
                    "StringEquals": {
                        "events:source": f"microservices.{name}",
                        "events:detail-type": list(spec.publishes),
                    }
                },
            }
        ], name
        assert {json.dumps(d["Condition"], sort_keys=True) for d in denies} == {
            json.dumps({"StringNotEquals": {"events:source": f"microservices.{name}"}}, sort_keys=True),
            json.dumps({"StringNotEquals": {"events:detail-type": list(spec.publishes)}}, sort_keys=True),
        }, name
    assert len(statements) == 3 * len(PUBLISHERS)


def test_policy_statement_ids_are_readable_and_unique(plan: Plan) -> None:
    sids = [s["Sid"] for s in bus_policy(plan)["Statement"]]
    assert len(set(sids)) == len(sids)
    name = "".join(part.capitalize() for part in FIRST_PUBLISHER.split("-"))  # order -> Order
    assert {f"Publish{name}", f"DenyForeignSource{name}", f"DenyUndeclaredType{name}"} <= set(sids)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_stack_bus_policy_names_the_task_roles_of_the_publishing_services(variant: str) -> None:
    """Each publisher's task role, or its outbox pipe's role for a service with an outbox (that service's
    task role publishes nothing itself: components/patterns/outbox.py)."""
    plan = preview(variant).plan
    stack = plan.stack
    publishers = [s.name for s in catalog_of(variant) if s.publishes]
    resource = only(plan, "aws:cloudwatch/eventBusPolicy:EventBusPolicy")
    principals = {s["Principal"]["AWS"] for s in policy_of(resource)["Statement"]}
    task_roles = {
        r.outputs["arn"]: r.parent.rsplit("::", 1)[-1].removesuffix("-outbox")
        for r in plan.of_type("aws:iam/role:Role")
        if r.outputs["arn"] in principals
    }
    assert set(task_roles) == principals, f"{resource.urn}: principals that are not roles of this stack"
    assert sorted(task_roles.values()) == sorted(f"ms-{stack}-{name}" for name in publishers), resource.urn
    outboxed = {s.name for s in catalog_of(variant) if s.outbox is not None}
    assert outboxed, "the order service publishes through its outbox"
    for role_arn, owner in task_roles.items():
        pipe_role = next(r for r in plan.of_type("aws:iam/role:Role") if r.outputs["arn"] == role_arn)
        assert ("outbox" in pipe_role.name) == (owner.removeprefix(f"ms-{stack}-") in outboxed), pipe_role.urn
    for statement in policy_of(resource)["Statement"]:
        owner = task_roles[statement["Principal"]["AWS"]].removeprefix(f"ms-{stack}-")
        conditions = statement["Condition"]
        source = conditions.get("StringEquals", conditions.get("StringNotEquals", {})).get("events:source")
        assert source in (None, f"microservices.{owner}"), f"{resource.urn}: {statement['Sid']} names {source}"


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (
            {FIRST_PUBLISHER: task_role(FIRST_PUBLISHER)},
            re.escape(f"missing: {sorted(set(PUBLISHERS) - {FIRST_PUBLISHER})}"),
        ),
        ({**{n: task_role(n) for n in PUBLISHERS}, "notification": task_role("notification")}, "not publishers"),
    ],
)
def test_bus_policy_needs_exactly_the_publishing_services(roles: dict[str, str], message: str) -> None:
    def build() -> None:
        EventPublishers(
            "p", EventPublishersArgs(bus=EventBus("t", bus_args(schema_dir=None), CONTEXT), task_role_arns=roles)
        )

    with pytest.raises(ValueError, match=message):
        run_component(build)


def test_topic_is_encrypted_and_only_the_function_role_may_publish_over_tls(plan: Plan) -> None:
    topic = only(plan, "aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == KEY_ARN, topic.urn
    policy_resource = only(plan, "aws:sns/topicPolicy:TopicPolicy")
    assert policy_resource.inputs["arn"] == topic.outputs["arn"], policy_resource.urn
    statements = policy_of(policy_resource)["Statement"]
    assert {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": topic.outputs["arn"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in statements, policy_resource.urn
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "AllowNotificationPublishers",
            "Effect": "Allow",
            "Principal": {"AWS": [FUNCTION_ROLE]},
            "Action": "sns:Publish",
            "Resource": topic.outputs["arn"],
        }
    ], policy_resource.urn


def test_the_bus_is_whole_at_construction_and_its_wiring_is_its_own_component() -> None:
    """Every rule (queue and direct) is the bus's; targets of direct rules, permissions and policies
    naming other components' principals are children of the wiring components declared after it."""
    plan = run_component(build_full_bus)
    by_urn = plan.by_urn()
    bus = only(plan, "microservices:events:EventBus")
    for rule in plan.of_type("aws:cloudwatch/eventRule:EventRule"):
        assert rule.parent == bus.urn, rule.urn
    wired = {
        "aws:lambda/permission:Permission": "microservices:wiring:FunctionRoutes",
        "aws:cloudwatch/eventBusPolicy:EventBusPolicy": "microservices:wiring:EventPublishers",
        "aws:sns/topicPolicy:TopicPolicy": "microservices:wiring:EventPublishers",
    }
    for type_token, parent_type in wired.items():
        for resource in plan.of_type(type_token):
            assert by_urn[resource.parent].type == parent_type, resource.urn


def test_function_routes_need_a_direct_subscription() -> None:
    def build() -> None:
        bus = EventBus("t", bus_args(schema_dir=None), CONTEXT)
        FunctionRoutes("r", FunctionRoutesArgs(bus=bus, service="inventory", function_arn="a", function_name="f"))

    with pytest.raises(ValueError, match="'inventory' has no `direct` subscription"):
        run_component(build)


def test_queue_lookups_name_the_services_that_have_a_queue() -> None:
    def build() -> None:
        bus = EventBus("t", bus_args(schema_dir=None), CONTEXT)
        assert bus.queue_consumers == QUEUE_CONSUMERS
        bus.queue_arn_for(next(s.name for s in CATALOG if s.name not in QUEUE_CONSUMERS))

    with pytest.raises(KeyError, match=f"services with one: {', '.join(QUEUE_CONSUMERS)}"):
        run_component(build)


# --- the patterns, against a real EventBridge matcher -----------------------------------------------


@pytest.fixture
def moto_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def candidate_events() -> list[tuple[str, str]]:
    """Every (source, detail-type) the platform can put, plus near misses a sloppy pattern would let in."""
    real = [(f"microservices.{s.name}", t) for s in PUBLISHERS.values() for t in s.publishes]
    near_misses = [
        ("microservices.payment", "OrderPlaced"),  # right type, wrong publisher
        ("microservices.order", "OrderShipped"),  # right publisher, undeclared type
        ("microservices.order.v2", "OrderPlaced"),  # source with the right prefix
        ("microservices.orders", "OrderPlaced"),
        ("microservices.order", "orderplaced"),  # case matters
        ("microservices.order", "OrderPlacedV2"),
        ("order", "OrderPlaced"),
        ("aws.events", "Scheduled Event"),
    ]
    return real + near_misses


def test_rule_patterns_deliver_exactly_the_subscribed_events(plan: Plan, moto_session: boto3.Session) -> None:
    events = moto_session.client("events")
    sqs = moto_session.client("sqs")
    events.create_event_bus(Name="probe")
    candidates = candidate_events()
    # What each rule must deliver comes from the specs (routes), never from the pattern under test.
    routes = {
        _rule_name(f"t-{r.consumer}-{r.publisher}{'' if r.delivery == 'queue' else '-direct'}"): r
        for r in routes_from_catalog(CATALOG)
    }
    rules = plan.of_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(r.name for r in rules) == sorted(routes)
    for index, rule in enumerate(rules):
        route = routes[rule.name]
        queue_url = sqs.create_queue(QueueName=f"probe-{index}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"probe-{index}", EventBusName="probe", EventPattern=rule.inputs["eventPattern"])
        events.put_targets(Rule=f"probe-{index}", EventBusName="probe", Targets=[{"Id": "q", "Arn": queue_arn}])
        for source, detail_type in candidates:
            events.put_events(
                Entries=[
                    {
                        "EventBusName": "probe",
                        "Source": source,
                        "DetailType": detail_type,
                        "Detail": json.dumps({"version": 1}),
                    }
                ]
            )
        received = set()
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                body = json.loads(message["Body"])
                received.add((body["source"], body["detail-type"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        expected = {(f"microservices.{route.publisher}", t) for t in route.detail_types}
        assert expected <= set(candidates), route
        assert received == expected, f"{rule.urn}: pattern {rule.inputs['eventPattern']} delivered {sorted(received)}"
        events.remove_targets(Rule=f"probe-{index}", EventBusName="probe", Ids=["q"])
        events.delete_rule(Name=f"probe-{index}", EventBusName="probe")


# --- versioned event contracts -----------------------------------------------------------------


def contract_files() -> list[Path]:
    return sorted(SCHEMA_DIR.glob("*/v*.json"))


def test_every_contract_file_is_registered_once_as_draft4(plan: Plan) -> None:
    registry = only(plan, "aws:schemas/registry:Registry")
    schemas = {s.inputs["name"]: s for s in plan.of_type("aws:schemas/schema:Schema")}
    expected = {}
    for path in contract_files():
        detail_type, version = path.parent.name, path.stem
        publisher = next(s for s in CATALOG if detail_type in s.publishes)
        expected[f"{publisher.event_source}@{detail_type}-{version}"] = path
    assert sorted(schemas) == sorted(expected)
    assert "microservices.order@OrderPlaced-v2" in schemas
    for name, schema in schemas.items():
        assert schema.inputs["registryName"] == registry.outputs["name"], schema.urn
        assert schema.inputs["type"] == "JSONSchemaDraft4", schema.urn
        content = json.loads(schema.inputs["content"])
        jsonschema.Draft4Validator.check_schema(content)
        assert content == to_draft4(json.loads(expected[name].read_text())), schema.urn
        assert len(schema.inputs["content"]) <= 100_000, schema.urn


def mutations(detail_type: str, version: int) -> list[dict[str, Any]]:
    """Details each contract must reject, one broken property at a time."""
    valid = detail(detail_type, version)
    missing = dict(valid)
    missing.pop("correlationId")
    return [
        missing,
        {**valid, "unexpected": True},
        {**valid, "version": version + 1},
        {**valid, "occurredAt": 42},
        {**valid, "correlationId": ""},
    ]


@pytest.mark.parametrize("path", contract_files(), ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_draft4_conversion_gives_the_same_verdicts_as_the_2020_12_contract(path: Path) -> None:
    original = json.loads(path.read_text())
    converted = to_draft4(original)
    modern = jsonschema.Draft202012Validator(original, format_checker=jsonschema.FormatChecker())
    draft4 = jsonschema.Draft4Validator(converted, format_checker=jsonschema.FormatChecker())
    version = int(path.stem[1:])
    valid = detail(path.parent.name, version)
    assert modern.is_valid(valid) and draft4.is_valid(valid), list(draft4.iter_errors(valid))
    for broken in mutations(path.parent.name, version):
        assert not modern.is_valid(broken), broken
        assert not draft4.is_valid(broken), f"draft-04 form of {path} accepts {broken}"


def test_draft4_conversion_of_keywords_without_a_direct_equivalent() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.test/x.json",
        "type": "object",
        "required": [],
        "properties": {
            "a": {"type": "number", "exclusiveMinimum": 0, "minimum": -5, "exclusiveMaximum": 10},
            "b": True,
            "c": {"$ref": "#/$defs/c", "maxLength": 3, "description": "sibling assertions"},
            "d": {"const": "x", "$comment": "dropped"},
        },
        "$defs": {"c": {"type": "string"}},
    }
    converted = to_draft4(schema)
    assert converted["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert converted["id"] == "https://example.test/x.json"
    assert "required" not in converted
    assert converted["properties"]["a"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 10,
        "exclusiveMaximum": True,
    }
    assert converted["properties"]["b"] == {}
    assert converted["properties"]["c"] == {
        "description": "sibling assertions",
        "allOf": [{"$ref": "#/definitions/c"}, {"maxLength": 3}],
    }
    assert converted["properties"]["d"] == {"enum": ["x"]}
    assert converted["definitions"] == {"c": {"type": "string"}}
    jsonschema.Draft4Validator.check_schema(converted)
    validator = jsonschema.Draft4Validator(converted)
    assert validator.is_valid({"a": 0.5, "c": "abc", "d": "x"})
    assert not validator.is_valid({"a": 0})
    assert not validator.is_valid({"c": "abcd"})


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$schema": "http://json-schema.org/draft-07/schema#"}, "expected a draft 2020-12 schema"),
        (
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "oneOf": []},
            "'oneOf' has no JSON Schema draft-04",
        ),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "other.json"}, "only local"),
    ],
)
def test_draft4_conversion_refuses_what_it_cannot_keep_exact(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_draft4(schema)


def test_a_contract_nobody_publishes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "OrderShipped").mkdir()
    (tmp_path / "OrderShipped" / "v1.json").write_text("{}")
    with pytest.raises(ConfigError, match="'OrderShipped' needs one publisher; no service publishes it"):
        discover_contracts(tmp_path, CATALOG)


KEYWORD_EXAMPLES: dict[str, dict[str, Any]] = {
    "$schema": {},
    "$id": {"$id": "https://example.com/x.json"},
    "$comment": {"$comment": "why"},
    "$defs": {"$defs": {"a": {"type": "string"}}},
    "$ref": {"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
    "title": {"title": "T"},
    "description": {"description": "D"},
    "examples": {"examples": [1]},
    "default": {"default": 1},
    "type": {"type": ["string", "null"]},
    "enum": {"enum": ["a", "b"]},
    "const": {"const": "a"},
    "properties": {"properties": {"x": {"type": "integer"}}},
    "required": {"required": ["x"]},
    "additionalProperties": {"additionalProperties": False},
    "items": {"items": {"type": "string"}},
    "minItems": {"minItems": 1},
    "maxItems": {"maxItems": 2},
    "minLength": {"minLength": 1},
    "maxLength": {"maxLength": 2},
    "pattern": {"pattern": "^a"},
    "format": {"format": "date-time"},
    "minimum": {"minimum": 0},
    "maximum": {"maximum": 9},
    "exclusiveMinimum": {"exclusiveMinimum": 0},
    "exclusiveMaximum": {"exclusiveMaximum": 9},
}
"""One small draft 2020-12 schema per contract keyword (the `$schema` line is added by the test)."""


def test_the_converter_rules_name_only_supported_keywords() -> None:
    """One list of contract keywords (`contracts.SUPPORTED_KEYWORDS`): the converter's dropped and rewritten
    keywords are drawn from it, and everything else in it is copied as is (derived, not a second list)."""
    from contracts import SUPPORTED_KEYWORDS
    from contracts.draft4 import _DROPPED, _SAME_IN_DRAFT4, _TRANSLATED

    assert _DROPPED | _TRANSLATED <= SUPPORTED_KEYWORDS
    assert _SAME_IN_DRAFT4 | _DROPPED | _TRANSLATED == SUPPORTED_KEYWORDS


def test_every_keyword_copied_as_is_means_the_same_in_draft4() -> None:
    """What the converter copies unchanged must be a draft-04 keyword (jsonschema's draft-04 meta-schema,
    not our list): a keyword added to SUPPORTED_KEYWORDS without a draft-04 twin fails here until it gets a
    rule in `contracts.draft4`."""
    from contracts.draft4 import _SAME_IN_DRAFT4

    draft4 = set(jsonschema.Draft4Validator.META_SCHEMA["properties"])
    assert sorted(_SAME_IN_DRAFT4 - draft4) == []


def test_every_supported_keyword_converts_to_a_valid_draft4_schema() -> None:
    from contracts import SUPPORTED_KEYWORDS

    assert set(KEYWORD_EXAMPLES) == SUPPORTED_KEYWORDS, "add an example for each supported keyword"
    for keyword, example in KEYWORD_EXAMPLES.items():
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **example}
        jsonschema.Draft202012Validator.check_schema(schema)
        converted = to_draft4(schema)
        jsonschema.Draft4Validator.check_schema(converted)
        assert converted["$schema"] == "http://json-schema.org/draft-04/schema#", keyword
