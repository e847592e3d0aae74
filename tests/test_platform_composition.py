"""The composition (`components/platform.py`): builders by service kind, a second Lambda service from
a spec file alone, the two-sided call graph, wiring that aliases its first parent, and the names and
ports the policy pack keeps its own copies of."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

import services
from components.envoy import EDGE_PORT, MESH_PORT
from components.mesh import ENVOY_CONTAINER
from components.platform import SERVICE_BUILDERS, Platform, PlatformInputs, build_platform
from model.config import load_stack_config
from model.errors import ConfigError
from model.spec import ServiceSpec
from offline.export import PLUGIN_VERSIONS
from offline.plan import Plan
from offline.policy import run_policy_pack
from offline.runtime import read_stack_files, run_function
from services import load_catalog, validate_catalog
from tests.conftest import ROOT, only, single

LAMBDA_COMPONENT = "microservices:notification:NotificationFunction"


def run_dev(then: Any = None) -> Plan:
    """The real dev composition under the mocks, with the catalog as `load_catalog()` finds it now."""
    files = read_stack_files(ROOT, "dev")

    def program() -> None:
        platform = build_platform(PlatformInputs.resolve("dev", load_stack_config(), load_catalog()))
        for key, value in platform.exports().items():
            pulumi.export(key, value)
        if then is not None:
            then(platform)

    return run_function(program, stack="dev", config=files.config, region=files.region).plan


# --- builders by kind -----------------------------------------------------------------------------


def test_every_service_kind_has_a_builder() -> None:
    kinds = typing.get_args(ServiceSpec.model_fields["kind"].annotation)
    assert sorted(SERVICE_BUILDERS) == sorted(kinds)


AUDIT_SPEC = '''
"""Audit service: a second Lambda, declared by this file and its code folder only."""

from model.spec import DynamoStore, ServiceSpec, Subscription

SPEC = ServiceSpec(
    name="audit",
    kind="lambda",
    description="Keeps an audit trail of orders and payments",
    code_dir={code_dir!r},
    subscribes=(
        Subscription(source="order", detail_types=("OrderPlaced",), delivery="queue"),
        Subscription(source="payment", detail_types=("PaymentCaptured",), delivery="direct"),
    ),
    data_stores=(DynamoStore(name="audit-trail", hash_key="eventId"),),
    publishes=("AuditRecorded",),
)
'''

AUDIT_HANDLER = """
import json
import os

import boto3

import contracts  # the shared contracts ship beside every handler


def handle(event, context):
    table = boto3.resource("dynamodb").Table(os.environ["AUDIT_TRAIL_NAME"])
    for record in event.get("Records", [event]):
        envelope = json.loads(record["body"]) if "body" in record else record
        table.put_item(Item={"eventId": envelope["id"], "type": contracts.parse_envelope(envelope).detail_type})
    return {"batchItemFailures": []}
"""


@pytest.fixture
def audit_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`services/audit/` (spec + handler) as a new package directory of `services`, nothing else touched."""
    package = tmp_path / "audit"
    package.mkdir()
    (package / "__init__.py").write_text('"""Audit service (test)."""\n')
    (package / "handler.py").write_text(textwrap.dedent(AUDIT_HANDLER))
    (package / "service.py").write_text(textwrap.dedent(AUDIT_SPEC.format(code_dir=str(package))))
    monkeypatch.setattr(services, "__path__", [*services.__path__, str(tmp_path)])
    monkeypatch.chdir(ROOT)
    yield package
    for name in [m for m in sys.modules if m.startswith("services.audit")]:
        del sys.modules[name]


def test_a_second_lambda_service_comes_from_its_spec_file_alone(audit_service: Path) -> None:
    plan = run_dev()
    by_urn = plan.by_urn()
    functions = {r.name: r for r in plan.of_type(LAMBDA_COMPONENT)}
    assert sorted(functions) == ["ms-dev-audit", "ms-dev-notification"], sorted(functions)
    audit = functions["ms-dev-audit"]
    own = [r for r in plan.resources if r.parent == audit.urn]
    fn = single((r for r in own if r.type == "aws:lambda/function:Function"), "function")
    assert {"handler.py", "contracts/__init__.py"} <= set(fn.inputs["code"]["assets"]), fn.urn
    variables = fn.inputs["environment"]["variables"]
    assert "NOTIFICATION_TOPIC_ARN" not in variables, "audit does not `notify`"
    assert variables["EVENT_BUS_NAME"] and variables["AUDIT_TRAIL_NAME"], variables

    # Its queue subscription: its own queue with a DLQ, consumed by its function.
    queue = only(plan, "aws:sqs/queue:Queue", "ms-dev-audit-queue")
    mapping = single((r for r in own if r.type == "aws:lambda/eventSourceMapping:EventSourceMapping"), "mapping")
    assert mapping.inputs["eventSourceArn"] == queue.outputs["arn"], mapping.urn
    # Its direct subscription: the bus's rule targets its function, through its own wiring component.
    rule = only(plan, "aws:cloudwatch/eventRule:EventRule", "ms-dev-audit-payment-direct")
    target = only(plan, "aws:cloudwatch/eventTarget:EventTarget", "ms-dev-audit-payment-direct-target")
    # (through the function's `live` alias, which CodeDeploy shifts between versions)
    alias = single((r for r in own if r.type == "aws:lambda/alias:Alias"), "alias")
    assert alias.inputs["functionName"] == fn.outputs["name"], alias.urn
    assert target.inputs["arn"] == alias.outputs["arn"] and target.inputs["rule"] == rule.outputs["name"], target.urn
    assert by_urn[target.parent].type == "microservices:wiring:FunctionRoutes", target.urn
    # Its table: owned by it (a child component named after it), granted to its role only.
    table = only(plan, "aws:dynamodb/table:Table", "ms-dev-audit-audit-trail")
    grants = json.loads(single((r for r in own if r.name == "ms-dev-audit-grants"), "grants").inputs["policy"])
    granted = {
        arn
        for s in grants["Statement"]
        for arn in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert table.outputs["arn"] in granted, grants
    # It publishes: the bus policy names its role for its own source and detail-type only.
    bus_policy = json.loads(only(plan, "aws:cloudwatch/eventBusPolicy:EventBusPolicy").inputs["policy"])
    # The function's own role (the Lambda also has a CodeDeploy role; registration order varies).
    [role] = [r for r in own if r.type == "aws:iam/role:Role" and r.name == "ms-dev-audit-role"]
    [publish] = [s for s in bus_policy["Statement"] if s["Sid"] == "PublishAudit"]
    assert publish["Principal"] == {"AWS": role.outputs["arn"]}, publish
    assert publish["Condition"]["StringEquals"]["events:source"] == "microservices.audit", publish
    # And it is watched: its failure queue and its errors alarm.
    alarms = {r.name for r in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert {"ms-dev-audit-failures-dlq-depth", "ms-dev-audit-lambda-errors", "ms-dev-audit-dlq-depth"} <= alarms
    # And the policy pack (no shared databases, TLS-only queues, IAM on exact ARNs, ...) accepts it.
    report = run_policy_pack(plan, pack_dir=ROOT / "policies")
    assert not report.mandatory, [(v.policy_name, v.message.splitlines()[-1]) for v in report.mandatory]


def test_a_lambda_spec_without_its_code_folder_is_one_config_line(tmp_path: Path) -> None:
    spec = ServiceSpec(name="ghost", kind="lambda", description="g", code_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"service spec 'ghost': codeDir = .*nowhere.*: no handler\.py there"):
        validate_catalog([spec])


def test_a_lambda_cannot_own_a_database_outside_the_vpc(tmp_path: Path) -> None:
    from model.spec import PostgresStore

    (tmp_path / "handler.py").write_text("")
    spec = ServiceSpec(
        name="reporter",
        kind="lambda",
        description="r",
        code_dir=str(tmp_path),
        data_stores=(PostgresStore(name="reports-db", database_name="reports"),),
    )
    with pytest.raises(ConfigError, match=r"dataStores.kind = 'postgres': a Lambda service runs outside the VPC"):
        validate_catalog([spec])


def test_lambda_only_fields_on_a_fargate_spec_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"service spec 'web': notifies = True: only Lambda services"):
        validate_catalog([ServiceSpec(name="web", description="w", notifies=True)])


# --- the two-sided call graph ---------------------------------------------------------------------


def test_a_call_the_callee_does_not_accept_is_one_config_line() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_catalog(
            [
                ServiceSpec(name="order", description="o", calls=("payment",)),
                ServiceSpec(name="payment", description="p", accepts=("refund",)),
                ServiceSpec(name="refund", description="r"),
            ]
        )
    assert str(caught.value) == (
        "service spec 'order': calls = 'payment': 'payment' does not accept calls from 'order' (its accepts: "
        "refund); add 'order' to the accepts of 'payment', or remove the call"
    )


def test_accepts_names_known_services_only() -> None:
    with pytest.raises(ConfigError, match="service spec 'payment': accepts = 'ordr': unknown service"):
        validate_catalog([ServiceSpec(name="payment", description="p", accepts=("ordr",))])


def test_the_real_specs_are_two_sided() -> None:
    catalog = {s.name: s for s in load_catalog()}
    for spec in catalog.values():
        for callee in spec.calls:
            assert spec.name in catalog[callee].accepts, f"{callee} must accept {spec.name}"
    assert catalog["order"].calls and not catalog["order"].accepts


# --- wiring keeps its resources' identity ---------------------------------------------------------

OLD_PARENT = {
    "microservices:wiring:FunctionRoutes": "microservices:events:EventBus",
    "microservices:wiring:EventPublishers": "microservices:events:EventBus",
    "microservices:wiring:MeshConnections": "microservices:mesh:ServiceMesh",
    "microservices:observability:PlatformWatch": "microservices:observability:Observability",
}


def test_resources_moved_into_wiring_components_alias_their_first_parent() -> None:
    """Each resource the wiring components declare was first a child of the bus, the mesh or the
    observability component, with the same name; its alias must resolve to exactly that old URN, so
    `pulumi up` moves it instead of deleting and re-creating it."""
    seen: dict[str, list[str]] = {}

    def then(platform: Platform) -> None:
        for component in platform.wiring:
            for child in component._childResources:
                urn_and_aliases = pulumi.Output.all(child.urn, *child._aliases)
                urn_and_aliases.apply(lambda values: seen.__setitem__(values[0], list(values[1:])))

    run_dev(then)
    assert len(seen) >= 20, sorted(seen)
    for urn, raw_aliases in seen.items():
        # The SDK builds an alias URN from the old parent's URN. The mock monitor gives components under
        # the stack URNs of the form `pulumi:pulumi:Stack$<type>` (pulumi.runtime.mocks.make_urn); the
        # engine never puts the root stack's type in a URN, so the engine's alias is the same string
        # without it.
        aliases = [a.replace("::pulumi:pulumi:Stack$", "::") for a in raw_aliases]
        parent_type = next(t for t in OLD_PARENT if f"::{t}$" in urn)
        old = urn.replace(f"::{parent_type}$", f"::{OLD_PARENT[parent_type]}$")
        assert aliases == [old], f"{urn}: aliases {aliases}, expected the old URN {old}"


# --- names and ports with one source of truth -----------------------------------------------------


def test_the_policy_packs_copies_of_the_sidecar_name_and_mesh_ports_agree() -> None:
    """`policies/` installs on its own (policies/requirements.txt), so it cannot import these; it
    keeps copies, and this test keeps them in step."""
    from guardrails import mesh as pack

    assert pack.SIDECAR == ENVOY_CONTAINER
    schema = pack.MTLS_REQUIRED.config_schema
    assert schema["meshPort"]["default"] == MESH_PORT
    assert schema["edgePort"]["default"] == EDGE_PORT


def test_the_exports_provider_versions_are_the_pinned_ones() -> None:
    """`offline/export.py` writes provider plugin versions into exports; they are the installed SDKs."""
    for package, version in PLUGIN_VERSIONS.items():
        assert importlib.metadata.version(f"pulumi-{package}") == version, package


def test_the_secret_markers_are_the_sdks() -> None:
    """The engine's secret envelope, written by the exports and by the policy runner: both copies are
    the Pulumi SDK's own constants (`pulumi.runtime.rpc`)."""
    from pulumi.runtime import rpc

    from offline import export
    from offline.policy import protocol

    assert export.SECRET_SIG_KEY == protocol.SIG_KEY == rpc._special_sig_key
    assert export.SECRET_SIG == protocol.SECRET_SIG == rpc._special_secret_sig
