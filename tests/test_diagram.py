"""The architecture diagram (offline/diagram.py), drawn from the plan: edge -> services, the mTLS call graph
with direction and port, data stores inside their owners, event routes, the mesh CA and Cloud Map;
identical bytes on every run; Graphviz SVG; the README's diagram is the generated one."""

from __future__ import annotations

import copy
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from offline import diagram
from offline.plan import PlannedResource
from offline.runtime import run_program
from services import load_catalog
from tests.conftest import ROOT, only, preview


def _mermaid(stack: str) -> str:
    return diagram.render(preview(stack).plan, "mermaid")


def _subgraph(text: str, group: str) -> str:
    match = re.search(rf"^  subgraph {group}\[.*?\n(.*?)^  end$", text, re.MULTILINE | re.DOTALL)
    assert match, f"no subgraph {group}"
    return match.group(1)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_draws_the_call_graph_from_the_plan(stack: str) -> None:
    text = _mermaid(stack)
    graph = diagram.build_graph(preview(stack).plan)
    catalog = {s.name: s for s in load_catalog()}
    # mTLS edges: exactly the calls the specs declare (caller -> callee), on the mesh port.
    mtls = {(e.source, e.target) for e in graph.edges if e.label == "mTLS :15443"}
    expected = {(s.name, callee) for s in catalog.values() if s.kind == "fargate" for callee in s.calls}
    assert mtls == expected
    # Edge: both ALBs reach each public service on Envoy's edge port; WAF filters the public ALB.
    public = {s.name for s in catalog.values() if s.kind == "fargate" and s.public_paths}
    for alb in (f"ms_{stack}_alb", f"ms_{stack}_api_alb"):
        assert {e.target for e in graph.edges if e.source == alb and e.label == "TLS :15444"} == public
    assert f'  ms_{stack}_waf -->|"filters"| ms_{stack}_alb' in text
    assert f"  ms_{stack}_api --> ms_{stack}_vpc_link" in text
    listener = only(preview(stack).plan, "aws:lb/listener:Listener", f"ms-{stack}-api-alb-http")
    protocol, port = listener.inputs["protocol"], listener.inputs["port"]
    assert f'  ms_{stack}_vpc_link -->|"{protocol} :{port}"| ms_{stack}_api_alb' in text


def test_data_stores_sit_inside_their_owner() -> None:
    text = _mermaid("prod")
    assert '[("RDS<br/>ms-prod-user-users-db")]' in _subgraph(text, "svc_user")
    assert '[("DynamoDB<br/>ms-prod-order-orders-table")]' in _subgraph(text, "svc_order")
    assert '[("ElastiCache<br/>ms-prod-payment-payment-cache")]' in _subgraph(text, "svc_payment")
    assert '[("RDS<br/>ms-prod-inventory-inventory-db")]' in _subgraph(text, "svc_inventory")
    assert "  user --> ms_prod_user_users_db" in text


def test_event_routes_bus_rule_queue_consumer_direct_invocations_and_topic() -> None:
    text = _mermaid("prod")
    for line in (
        '  order -->|"OrderPlaced / OrderCancelled"| ms_prod_bus',
        '  ms_prod_bus -->|"OrderPlaced / OrderCancelled"| ms_prod_inventory_order',
        "  ms_prod_inventory_order --> ms_prod_inventory_queue",
        '  ms_prod_inventory_queue -->|"polls"| inventory',
        '  ms_prod_notification_queue -->|"polls"| notification',
        '  ms_prod_bus -->|"PaymentCaptured"| ms_prod_notification_payment_direct',
        '  ms_prod_notification_payment_direct -->|"direct invocation"| notification',
        '  notification -->|"publishes"| ms_prod_notifications',
    ):
        assert line in text, line


def test_mesh_ca_and_cloud_map_reach_every_meshed_service() -> None:
    prod, dev = _mermaid("prod"), _mermaid("dev")
    assert 'ms_prod_ca>"Mesh CA: AWS Private CA<br/>ms-prod-ca"]' in prod
    assert 'ms_dev_ca_cert>"Mesh CA: self-managed<br/>ms-dev-ca-cert"]' in dev
    for service in ("user", "order", "payment", "inventory"):
        assert f'  ms_prod_ca -.->|"workload certificate"| {service}' in prod
        assert f'  ms_prod_namespace -.->|"discovery"| {service}' in prod


def test_a_new_service_type_from_another_component_does_not_break_the_diagram() -> None:
    plan = copy.deepcopy(preview("dev").plan)
    stack_urn = next(r.urn for r in plan.resources if r.type == "pulumi:pulumi:Stack")
    plan.resources.append(
        PlannedResource(
            urn=stack_urn.split("::pulumi:pulumi:Stack")[0] + "::aws:sfn/stateMachine:StateMachine::order-saga",
            type="aws:sfn/stateMachine:StateMachine",
            name="order-saga",
            custom=True,
            parent=stack_urn,
            inputs={"tags": {"Service": "order"}},
        )
    )
    plan.resources.append(
        PlannedResource(
            urn=stack_urn.split("::pulumi:pulumi:Stack")[0] + "::aws:opensearch/domain:Domain::search",
            type="aws:opensearch/domain:Domain",
            name="search",
            custom=True,
            parent=stack_urn,
        )
    )
    text = diagram.render(plan, "mermaid")
    assert '[("Step Functions<br/>order-saga")]' in _subgraph(text, "svc_order")


def test_two_runs_print_identical_bytes() -> None:
    again = run_program(ROOT, "staging").plan  # a second, independent run of the program
    for fmt in ("mermaid", "dot"):
        assert diagram.render(again, fmt) == diagram.render(preview("staging").plan, fmt)


def test_svg_is_graphviz_output_of_the_dot_text_and_well_formed() -> None:
    assert shutil.which("dot"), "Graphviz is required: `make setup` installs it (apt-get install graphviz)"
    plan = preview("prod").plan
    first, second = diagram.render(plan, "svg"), diagram.render(plan, "svg")
    assert first == second
    root = ET.fromstring(first.split("\n", 3)[3] if first.startswith("<?xml") else first)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    for label in ("ms-prod-user-users-db", "mTLS :15443", "EventBridge bus", "Mesh CA: AWS Private CA"):
        assert label in texts, label


def test_readme_diagram_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    expected = diagram.readme_block(_mermaid("prod"))
    assert expected in readme, (
        "README.md's diagram is stale: run `python -m offline diagram --stack prod --format mermaid --readme README.md`"
    )
    assert readme.count("```mermaid") == 1


def test_cli_writes_each_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import offline.runtime
    from offline.__main__ import main

    monkeypatch.setattr(offline.runtime, "run_program", lambda _project_dir, stack: preview(stack))

    out = tmp_path / "d.dot"
    assert main(["diagram", "--stack", "dev", "--format", "dot", "--output", str(out)]) == 0
    assert out.read_text() == diagram.render(preview("dev").plan, "dot")
    assert out.read_text().startswith('digraph "dev" {')
    assert main(["diagram", "--stack", "dev", "--format", "dot", "--readme", str(tmp_path / "x.md")]) == 2
    assert "--readme takes the mermaid format" in capsys.readouterr().err
