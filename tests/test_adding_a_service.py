"""README "Adding a service": one spec file plus one `calls` entry, and everything else follows.

The stack-level checks of the other test modules already run over every stack with an extra service
(`VARIANTS` in conftest.py); here we check that the extra service really got its own pieces, and follow
the README literally in a copy of the project, through the CLI, with the policy pack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from offline.exitcodes import ExitCode
from offline.plan import Plan, PlannedResource
from tests.conftest import EXTENDED, ROOT, STACKS, extended_catalog, preview

EXTRA = next(s for s in extended_catalog() if s.name == "zz-extra")


def owned_by(plan: Plan, resource: PlannedResource, service: str) -> bool:
    """True when `resource` sits (at any depth) under the FargateMicroservice of `service`."""
    by_urn = plan.by_urn()
    parent = by_urn.get(resource.parent)
    while parent is not None:
        if parent.type == "microservices:service:FargateMicroservice":
            return parent.name.endswith(f"-{service}")
        parent = by_urn.get(parent.parent)
    return False


@pytest.mark.parametrize("stack", STACKS)
def test_the_extra_service_gets_its_service_store_queue_rule_and_route(stack: str) -> None:
    plan = preview(f"{stack}{EXTENDED}").plan
    [service] = [
        r for r in plan.of_type("microservices:service:FargateMicroservice") if r.name == f"ms-{stack}-{EXTRA.name}"
    ]
    [table] = [r for r in plan.of_type("aws:dynamodb/table:Table") if r.name.endswith(EXTRA.data_stores[0].name)]
    assert owned_by(plan, table, EXTRA.name), f"{table.urn}: not owned by {service.urn}"
    queues = [
        q
        for q in plan.of_type("aws:sqs/queue:Queue")
        if q.inputs["tags"].get("Service") == EXTRA.name and q.inputs["tags"].get("QueueRole") == "consumer"
    ]
    assert len(queues) == 1, [q.urn for q in queues]
    [subscription] = EXTRA.subscribes
    patterns = [
        json.loads(r.inputs["eventPattern"])
        for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
        if r.inputs["tags"].get("Service") == EXTRA.name
    ]
    assert patterns == [
        {"source": [f"microservices.{subscription.source}"], "detail-type": list(subscription.detail_types)}
    ]
    routes = [r.inputs["routeKey"] for r in plan.of_type("aws:apigatewayv2/route:Route")]
    assert any(EXTRA.public_paths[0] in key for key in routes), routes
    assert EXTRA.name in plan.outputs["serviceNames"]


def test_following_the_readme_in_a_copy_of_the_project_previews_clean(tmp_path: Path) -> None:
    """The newcomer path: copy the project, add `services/<name>.py`, add it to one service's `calls`
    and its callee's `accepts`,
    run the offline preview with the policy pack: exit 0, the new service planned, no violation."""
    skip = {".git", ".venv", "node_modules", "tests", "benchmarks", "out", ".mypy_cache", ".pytest_cache"}
    for source in ROOT.iterdir():
        if source.name in skip or source.name.endswith(".egg-info"):
            continue
        if source.is_dir():
            shutil.copytree(source, tmp_path / source.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / source.name)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # the policy pack runs in the project's virtualenv
    publisher = next(s for s in extended_catalog() if s.publishes and s.name != EXTRA.name)
    (tmp_path / "services" / "shipping.py").write_text(
        f'''"""Shipping: ships paid orders (added the way the README says)."""

from model.spec import DynamoStore, ServiceSpec, Subscription

SPEC = ServiceSpec(
    name="shipping",
    description="Shipment scheduling and tracking",
    image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
    run_as_user="101:101",
    sizing={{"cpu": 256, "memory": 512}},
    public_paths=("/shipments",),
    calls=({EXTRA.calls[0]!r},),
    accepts=("order",),
    data_stores=(DynamoStore(name="shipments-table", hash_key="shipmentId"),),
    publishes=("ShipmentSent",),
    subscribes=(Subscription(source={publisher.name!r}, detail_types=({publisher.publishes[0]!r},)),),
)
'''
    )
    # "...plus one `calls` entry": the first spec that already calls something now also calls shipping.
    caller_file = next(f for f in sorted((tmp_path / "services").glob("*.py")) if "calls=(" in f.read_text())
    assert caller_file.name == "order.py", caller_file  # shipping's spec says it accepts order
    caller_file.write_text(caller_file.read_text().replace("calls=(", 'calls=("shipping", ', 1))
    # ... and the callee's `accepts` names shipping (calls are two-sided).
    callee_file = tmp_path / "services" / f"{EXTRA.calls[0]}.py"
    callee_file.write_text(callee_file.read_text().replace("accepts=(", 'accepts=("shipping", ', 1))
    result = subprocess.run(
        [sys.executable, "-m", "offline", "preview", "--stack", "dev"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the copy's components/, services/ and offline/ are the ones imported
        timeout=300,
    )
    assert result.returncode == ExitCode.OK, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ms-dev-shipping" in result.stdout
    assert "Policy violations: 0 mandatory" in result.stdout
