"""End-to-end tests of offline/policy/ against the tiny pack in tests/fixtures/policy_packs/tiny.

The pack is started for real (a Python gRPC server, about half a second), so one run over the shared plan
serves most tests through a module fixture; the failure modes each start their own small pack.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from google.protobuf import json_format

from offline.plan import UNKNOWN, Plan, PlannedResource
from offline.policy import (
    OUTPUT_VALUE_SIG,
    RESOURCE_REFERENCE_SIG,
    SECRET_SIG,
    SIG_KEY,
    PolicyConfigError,
    PolicyPackError,
    PolicyReport,
    build_analyze_request,
    build_analyze_stack_request,
    engine_properties,
    format_report,
    root_stack_urn,
    run_policy_pack,
)

TINY = Path(__file__).parent / "fixtures" / "policy_packs" / "tiny"
PREFIX = "urn:pulumi:dev::shop::"
SERVICE = "microservices:service:FargateMicroservice"
STACK_URN = f"{PREFIX}pulumi:pulumi:Stack::shop-dev"
PROVIDER_URN = f"{PREFIX}pulumi:providers:aws::eu"
USERS_URN = f"{PREFIX}{SERVICE}::users"
ORDERS_URN = f"{PREFIX}{SERVICE}::orders"
DB_URN = f"{PREFIX}{SERVICE}$aws:rds/instance:Instance::users-db"
USERS_TASK_URN = f"{PREFIX}{SERVICE}$aws:ecs/taskDefinition:TaskDefinition::users-task"
ORDERS_TASK_URN = f"{PREFIX}{SERVICE}$aws:ecs/taskDefinition:TaskDefinition::orders-task"
ASSETS_URN = f"{PREFIX}aws:s3/bucket:Bucket::assets"
LOGS_URN = f"{PREFIX}aws:s3/bucket:Bucket::logs"


def secret(value: object) -> dict[str, object]:
    return {SIG_KEY: SECRET_SIG, "value": value}


def make_plan() -> Plan:
    """Two services; the orders service's task definition reaches into the users service's database."""
    db_inputs = {
        "engine": "postgres",
        "instanceClass": "db.t4g.micro",
        "password": secret("short-pw"),
        "kmsKeyId": UNKNOWN,
        "__defaults": ["identifier"],
    }
    return Plan(
        project="shop",
        stack="dev",
        resources=[
            PlannedResource(urn=STACK_URN, type="pulumi:pulumi:Stack", name="shop-dev", custom=False, parent=""),
            PlannedResource(
                urn=PROVIDER_URN,
                type="pulumi:providers:aws",
                name="eu",
                custom=True,
                parent=STACK_URN,
                id="3b4c2f0e-provider",
                inputs={"region": "eu-west-1"},
                outputs={"region": "eu-west-1"},
            ),
            PlannedResource(urn=USERS_URN, type=SERVICE, name="users", custom=False, parent=STACK_URN),
            PlannedResource(urn=ORDERS_URN, type=SERVICE, name="orders", custom=False, parent=STACK_URN),
            PlannedResource(
                urn=DB_URN,
                type="aws:rds/instance:Instance",
                name="users-db",
                custom=True,
                parent=USERS_URN,
                id="db-ABCDEFGHIJKL",
                inputs=db_inputs,
                outputs={
                    **{k: v for k, v in db_inputs.items() if k != "__defaults"},
                    "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/0b7c5f2e",
                    "address": "users-db.c9akciq32.eu-west-1.rds.amazonaws.com",
                },
                protect=True,
                secret_outputs=["password"],
            ),
            PlannedResource(
                urn=USERS_TASK_URN,
                type="aws:ecs/taskDefinition:TaskDefinition",
                name="users-task",
                custom=True,
                parent=USERS_URN,
                inputs={"family": "users"},
                outputs={"family": "users", "arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/users:1"},
                dependencies=[DB_URN],
                property_dependencies={"containerDefinitions": [DB_URN]},
            ),
            PlannedResource(
                urn=ORDERS_TASK_URN,
                type="aws:ecs/taskDefinition:TaskDefinition",
                name="orders-task",
                custom=True,
                parent=ORDERS_URN,
                inputs={"family": "orders"},
                outputs={"family": "orders", "arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/orders:1"},
                dependencies=[DB_URN],
                property_dependencies={"containerDefinitions": [DB_URN], "family": []},
            ),
            PlannedResource(
                urn=ASSETS_URN,
                type="aws:s3/bucket:Bucket",
                name="assets",
                custom=True,
                parent=STACK_URN,
                provider=f"{PROVIDER_URN}::3b4c2f0e-provider",
                inputs={"acl": "public-read"},
                outputs={"acl": "public-read", "arn": "arn:aws:s3:::assets-1f2e3d4"},
            ),
            PlannedResource(
                urn=LOGS_URN,
                type="aws:s3/bucket:Bucket",
                name="logs",
                custom=True,
                parent=STACK_URN,
                inputs={"acl": "private"},
                outputs={"acl": "private", "arn": "arn:aws:s3:::logs-9a8b7c6"},
            ),
        ],
    )


@pytest.fixture(scope="module")
def run() -> tuple[Plan, PolicyReport]:
    plan = make_plan()
    report = run_policy_pack(plan, TINY, config={"stack-size": {"maxResources": 3}}, timeout=30)
    return plan, report


def violations_of(report: PolicyReport, policy: str) -> list:
    return [v for v in report.violations if v.policy_name == policy]


def assert_process_gone(pid: int | None) -> None:
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def write_pack(directory: Path, main: str, runtime: str = "python") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "PulumiPolicy.yaml").write_text(f"runtime: {runtime}\nversion: 0.0.1\n", encoding="utf-8")
    (directory / "__main__.py").write_text(main, encoding="utf-8")
    return directory


# --- the shared run ---------------------------------------------------------------------------------------


def test_reports_exactly_the_expected_violations(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    found = sorted((v.enforcement_level, v.policy_name, v.urn) for v in report.violations)
    assert found == [
        ("advisory", "db-password-length", DB_URN),
        ("advisory", "db-password-length", DB_URN),
        ("advisory", "stack-size", STACK_URN),
        ("mandatory", "database-per-service", DB_URN),
        ("mandatory", "no-public-buckets", ASSETS_URN),
    ], format_report(report)
    assert [v.policy_name for v in report.mandatory] == ["no-public-buckets", "database-per-service"]
    assert len(report.advisory) == 3
    assert report.has_mandatory
    assert report.counts() == {"mandatory": 2, "advisory": 3}
    assert {(v.policy_pack_name, v.policy_pack_version) for v in report.violations} == {("tiny", "0.1.0")}


def test_report_describes_the_pack_and_its_policies(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    assert (report.pack_name, report.pack_version, report.pack_path) == ("tiny", "0.1.0", str(TINY))
    assert [(p.name, p.policy_type, p.enforcement_level) for p in report.policies] == [
        ("database-per-service", "stack", "mandatory"),
        ("db-password-length", "resource", "advisory"),
        ("no-public-buckets", "resource", "mandatory"),
        ("stack-size", "stack", "advisory"),
    ]


def test_stack_policy_sees_parents_dependencies_and_outputs(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    [violation] = violations_of(report, "database-per-service")
    assert violation.urn == DB_URN
    assert violation.message == (
        "A database belongs to one service; no other service may depend on it.\n"
        "database 'users-db' (users-db.c9akciq32.eu-west-1.rds.amazonaws.com) belongs to 'users', "
        "but 'orders-task' of 'orders' depends on it (properties: containerDefinitions)"
    )


def test_secret_reaches_the_policy_as_its_plain_value(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    messages = [v.message for v in violations_of(report, "db-password-length")]
    assert "Database master passwords must be long.\nusers-db: str password has 8 characters, fewer than 16.0" in (
        messages
    )


def test_unknown_value_stops_the_policy_as_in_a_preview(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    [unknown] = [v for v in violations_of(report, "db-password-length") if "during preview" in v.message]
    assert unknown.enforcement_level == "advisory"
    assert unknown.urn == DB_URN  # the SDK sends no URN; the engine files it under the analyzed resource
    assert unknown.message == (
        "can't run policy 'db-password-length' from policy pack 'tiny@v0.0.1' during preview: "
        "string value at .kmsKeyId can't be known during preview"
    )


def test_resource_policy_is_given_the_explicit_provider(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    [violation] = violations_of(report, "no-public-buckets")
    assert violation.message == "S3 buckets must not be public.\nbucket 'assets' has acl 'public-read' (provider 'eu')"


def test_stack_violation_without_urn_is_filed_under_the_root_stack(run: tuple[Plan, PolicyReport]) -> None:
    plan, report = run
    [violation] = violations_of(report, "stack-size")
    assert violation.urn == root_stack_urn(plan.project, plan.stack) == STACK_URN
    assert violation.message == f"Stacks stay small.\nthe stack has {len(plan.resources)} resources, more than 3.0"


def test_configure_sends_schema_defaults_and_user_config(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    assert report.config == {
        "database-per-service": {"enforcementLevel": "mandatory"},
        "db-password-length": {"enforcementLevel": "advisory", "minLength": 16},
        "no-public-buckets": {"enforcementLevel": "mandatory"},
        "stack-size": {"enforcementLevel": "advisory", "maxResources": 3},
    }


def test_pack_process_is_gone_after_the_run(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    assert_process_gone(report.pack_pid)


def test_format_report_prints_the_cli_policies_section(run: tuple[Plan, PolicyReport]) -> None:
    _, report = run
    assert format_report(report) == (
        "Policies:\n"
        f"    ❌ tiny@v0.1.0 (local: {TINY})\n"
        "        - [advisory]  db-password-length  (aws:rds/instance:Instance: users-db)\n"
        "          Database master passwords must be long.\n"
        "          users-db: str password has 8 characters, fewer than 16.0\n"
        "        - [advisory]  db-password-length  (aws:rds/instance:Instance: users-db)\n"
        "          can't run policy 'db-password-length' from policy pack 'tiny@v0.0.1' during preview: "
        "string value at .kmsKeyId can't be known during preview\n"
        "        - [advisory]  stack-size  (pulumi:pulumi:Stack: shop-dev)\n"
        "          Stacks stay small.\n"
        "          the stack has 9 resources, more than 3.0\n"
        "        - [mandatory]  database-per-service  (aws:rds/instance:Instance: users-db)\n"
        "          A database belongs to one service; no other service may depend on it.\n"
        "          database 'users-db' (users-db.c9akciq32.eu-west-1.rds.amazonaws.com) belongs to 'users', "
        "but 'orders-task' of 'orders' depends on it (properties: containerDefinitions)\n"
        "        - [mandatory]  no-public-buckets  (aws:s3/bucket:Bucket: assets)\n"
        "          S3 buckets must not be public.\n"
        "          bucket 'assets' has acl 'public-read' (provider 'eu')\n"
        "\n"
        "Policy violations: 2 mandatory, 3 advisory\n"
    )


# --- the wire format, without a pack ------------------------------------------------------------------------


def test_analyze_request_carries_what_the_engine_sends() -> None:
    plan = make_plan()
    by_urn = plan.by_urn()
    request = build_analyze_request(by_urn[DB_URN], by_urn)
    assert (request.urn, request.type, request.name) == (DB_URN, "aws:rds/instance:Instance", "users-db")
    assert json_format.MessageToDict(request.properties) == {
        "engine": "postgres",
        "instanceClass": "db.t4g.micro",
        "password": {SIG_KEY: SECRET_SIG, "value": "short-pw"},  # still a secret on the wire
        "kmsKeyId": UNKNOWN,  # the unknown sentinel
    }  # and no "__defaults": the engine skips internal keys for analyzers
    assert request.options.parent == USERS_URN
    assert request.options.protect
    assert list(request.options.additionalSecretOutputs) == ["password"]
    assert request.options.HasField("customTimeouts")
    assert not request.HasField("provider")

    bucket = build_analyze_request(by_urn[ASSETS_URN], by_urn)
    assert (bucket.provider.urn, bucket.provider.type, bucket.provider.name) == (
        PROVIDER_URN,
        "pulumi:providers:aws",
        "eu",
    )
    assert json_format.MessageToDict(bucket.provider.properties) == {"region": "eu-west-1"}

    remediate = build_analyze_request(by_urn[DB_URN], by_urn, skip_internal_keys=False)
    assert json_format.MessageToDict(remediate.properties)["__defaults"] == ["identifier"]


def test_analyze_stack_request_carries_outputs_parents_and_dependencies() -> None:
    plan = make_plan()
    request = build_analyze_stack_request(plan)
    assert [r.urn for r in request.resources] == [r.urn for r in plan.resources]
    orders_task = {r.urn: r for r in request.resources}[ORDERS_TASK_URN]
    assert orders_task.parent == ORDERS_URN
    assert orders_task.options.parent == ""  # AnalyzeStack has the parent on the resource only
    assert list(orders_task.dependencies) == [DB_URN]
    assert {k: list(v.urns) for k, v in orders_task.propertyDependencies.items()} == {"containerDefinitions": [DB_URN]}
    db = {r.urn: r for r in request.resources}[DB_URN]
    assert json_format.MessageToDict(db.properties)["address"] == "users-db.c9akciq32.eu-west-1.rds.amazonaws.com"


def test_output_values_and_resource_references_are_marshalled_as_for_analyzers() -> None:
    marshalled = json_format.MessageToDict(
        engine_properties(
            {
                "known": {SIG_KEY: OUTPUT_VALUE_SIG, "value": "x", "dependencies": [DB_URN]},
                "unknown": {SIG_KEY: OUTPUT_VALUE_SIG},
                "secretOutput": {SIG_KEY: OUTPUT_VALUE_SIG, "value": 3, "secret": True},
                "custom": {SIG_KEY: RESOURCE_REFERENCE_SIG, "urn": DB_URN, "id": "db-1"},
                "pending": {SIG_KEY: RESOURCE_REFERENCE_SIG, "urn": DB_URN, "id": ""},
                "component": {SIG_KEY: RESOURCE_REFERENCE_SIG, "urn": USERS_URN},
                "nested": {"list": [1, None, {"__internal": 1, "ok": True}]},
            }
        )
    )
    assert marshalled == {
        "known": "x",
        "unknown": UNKNOWN,
        "secretOutput": {SIG_KEY: SECRET_SIG, "value": 3.0},
        "custom": "db-1",
        "pending": UNKNOWN,
        "component": USERS_URN,
        "nested": {"list": [1.0, None, {"ok": True}]},
    }


# --- config, and packs that misbehave -------------------------------------------------------------------------


def test_config_file_overrides_enforcement_levels(tmp_path: Path) -> None:
    config_file = tmp_path / "policy-config.json"
    config_file.write_text(json.dumps({"all": "advisory", "db-password-length": {"minLength": 8}}), encoding="utf-8")
    report = run_policy_pack(make_plan(), TINY, config=config_file, timeout=30)
    assert not report.has_mandatory
    assert sorted(v.policy_name for v in report.violations) == [
        "database-per-service",
        "db-password-length",  # only the unknown kmsKeyId: an 8-character password is now long enough
        "no-public-buckets",
    ]
    assert {p.name: p.enforcement_level for p in report.policies} == dict.fromkeys(
        ["database-per-service", "db-password-length", "no-public-buckets", "stack-size"], "advisory"
    )
    assert_process_gone(report.pack_pid)


def test_config_that_breaks_the_schema_is_rejected() -> None:
    with pytest.raises(PolicyConfigError) as caught:
        run_policy_pack(make_plan(), TINY, config={"stack-size": {"maxResources": "three"}}, timeout=30)
    assert (
        str(caught.value)
        == "validating policy config: tiny 0.1.0  stack-size: maxResources: 'three' is not of type 'integer'"
    )
    assert_process_gone(caught.value.pid)


# (id, the pack's __main__.py, the runner's timeout, the error it must raise, within how many seconds)
MISBEHAVING_PACKS = [
    pytest.param(
        'raise RuntimeError("boom: the pack is broken")\n',
        30,
        r"^policy pack exited with code 1 before printing its port\n--- policy pack stderr ---"
        r"(?s:.*)RuntimeError: boom: the pack is broken",
        15,
        id="crashing-fails-fast-with-its-stderr",
    ),
    pytest.param(
        "import time\n\ntime.sleep(600)\n",
        1.0,
        r"policy pack did not print its port within 1 s",
        10,
        id="silent-times-out-and-is-stopped",
    ),
    pytest.param(
        'print("hello from the pack")\nimport time\n\ntime.sleep(600)\n',
        30,
        r"wrote a non-numeric port to stdout \('hello from the pack'\)",
        None,
        id="prints-something-else-than-a-port",
    ),
]


@pytest.mark.parametrize(("main", "timeout", "error", "within"), MISBEHAVING_PACKS)
def test_a_misbehaving_pack_fails_with_one_error_and_is_stopped(
    tmp_path: Path, main: str, timeout: float, error: str, within: float | None
) -> None:
    pack = write_pack(tmp_path / "pack", main)
    started = time.monotonic()
    with pytest.raises(PolicyPackError, match=error) as caught:
        run_policy_pack(make_plan(), pack, timeout=timeout)
    if within is not None:
        assert time.monotonic() - started < within
    assert_process_gone(caught.value.pid)


def test_non_python_pack_is_refused_before_starting_anything(tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "node", "", runtime="nodejs")
    with pytest.raises(PolicyPackError, match="runtime 'nodejs' is not supported offline"):
        run_policy_pack(make_plan(), pack)


def test_resources_checked_several_at_a_time_report_as_one_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner keeps up to RESOURCE_CALLS_IN_FLIGHT resources' calls in flight; the report must be
    the one a resource-after-resource run gives, in plan order."""
    from offline.policy import runner

    plan = make_plan()
    for i in range(40):  # every third public: violations from many resources, spread over the plan
        acl = "public-read" if i % 3 == 0 else "private"
        plan.resources.append(
            PlannedResource(
                urn=f"{PREFIX}aws:s3/bucket:Bucket::bucket-{i}",
                type="aws:s3/bucket:Bucket",
                name=f"bucket-{i}",
                custom=True,
                parent=STACK_URN,
                inputs={"acl": acl},
                outputs={"acl": acl, "arn": f"arn:aws:s3:::bucket-{i}"},
            )
        )
    reports = {}
    for in_flight in (1, 4):
        monkeypatch.setattr(runner, "RESOURCE_CALLS_IN_FLIGHT", in_flight)
        reports[in_flight] = run_policy_pack(plan, TINY, config={"stack-size": {"maxResources": 3}}, timeout=30)
    one, several = reports[1], reports[4]
    assert [(v.policy_name, v.urn, v.message) for v in several.violations] == [
        (v.policy_name, v.urn, v.message) for v in one.violations
    ]
    assert several.not_applicable == one.not_applicable
    public = [v.urn.rsplit("::", 1)[1] for v in several.violations if v.policy_name == "no-public-buckets"]
    assert public == ["assets", *(f"bucket-{i}" for i in range(0, 40, 3))]
