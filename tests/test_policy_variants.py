"""End to end: deliberately broken variants of the REAL program are stopped by the policy pack, run
over the offline preview through the Analyzer protocol exactly as `make preview` runs it.

Each variant runs the real `__main__.py` for the dev stack and then makes one mistake a developer
could make in it (an extra grant or rule declared next to the platform, or a Pulumi stack
transformation that flips one property), so the pack sees a realistic, otherwise compliant plan.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from offline.export import stack_export
from offline.plan import Plan
from offline.policy import PolicyReport, run_policy_pack
from offline.runtime import read_stack_files, run_function
from tests.conftest import ROOT, VARIANTS, preview


def run_variant(
    mistake: Callable[[dict[str, Any]], None] | None = None, before: Callable[[], None] | None = None
) -> Plan:
    files = read_stack_files(ROOT, "dev")

    def program() -> None:
        if before is not None:
            before()
        program_globals = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        if mistake is not None:
            mistake(program_globals)

    return run_function(program, stack="dev", config=files.config, region=files.region).plan


def mandatory(report: PolicyReport) -> list[tuple[str, str]]:
    return [(v.policy_name, v.message) for v in report.mandatory]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_real_stacks_have_no_violations(variant: str) -> None:
    report = run_policy_pack(preview(variant).plan, pack_dir=ROOT / "policies")
    assert not report.mandatory, mandatory(report)
    assert not report.advisory, [(v.policy_name, v.message) for v in report.advisory]
    assert len(report.policies) >= 30


def test_two_services_sharing_one_database_is_stopped() -> None:
    def order_reads_the_users_database(program: dict[str, Any]) -> None:
        services = program["platform"].services
        users_db = services["user"].stores["users-db"]
        order = services["order"]
        # The classic shortcut: let the order service query the users database directly.
        aws.vpc.SecurityGroupIngressRule(
            "ms-dev-order-to-users-db",
            security_group_id=users_db.security_group_id,
            referenced_security_group_id=order.security_group_id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
        )

    report = run_policy_pack(run_variant(order_reads_the_users_database), pack_dir=ROOT / "policies")
    found = [m for p, m in mandatory(report) if p == "no-shared-databases"]
    assert found, mandatory(report)
    assert any(
        "Database 'ms-dev-user-users-db' (RDS instance) owned by service 'ms-dev-user' is shared with service "
        "'ms-dev-order': security group rule 'ms-dev-order-to-users-db'" in m
        for m in found
    ), found
    assert {p for p, _ in mandatory(report)} <= {"no-shared-databases", "mtls-required"}, mandatory(report)


def _drop_envoy_from(service: str) -> Callable[[], None]:
    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:ecs/taskDefinition:TaskDefinition" or not args.name.startswith(f"ms-dev-{service}"):
            return None

        def without_envoy(definitions: str) -> str:
            containers = [c for c in json.loads(definitions) if c["name"] != "envoy"]
            for container in containers:
                container.pop("dependsOn", None)
            return json.dumps(containers)

        props = dict(args.props)
        props["container_definitions"] = pulumi.Output.from_input(props["container_definitions"]).apply(without_envoy)
        return pulumi.ResourceTransformationResult(props, args.opts)

    return lambda: pulumi.runtime.register_stack_transformation(transformation)


def test_a_service_with_mtls_turned_off_is_stopped() -> None:
    report = run_policy_pack(run_variant(before=_drop_envoy_from("payment")), pack_dir=ROOT / "policies")
    found = [m for p, m in mandatory(report) if p == "mtls-required"]
    assert found and all("payment" in m for m in found), mandatory(report)
    assert any("envoy" in m for m in found), found


def test_a_publicly_accessible_database_is_stopped() -> None:
    def public_database(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:rds/instance:Instance" or "inventory" not in args.name:
            return None
        return pulumi.ResourceTransformationResult({**args.props, "publicly_accessible": True}, args.opts)

    plan = run_variant(before=lambda: pulumi.runtime.register_stack_transformation(public_database))
    report = run_policy_pack(plan, pack_dir=ROOT / "policies")
    assert [p for p, _ in mandatory(report)] == ["rds-no-public-access"], mandatory(report)
    assert "inventory" in report.mandatory[0].urn


def test_policy_check_cli_reads_a_saved_export_and_fails_on_violations(tmp_path: Path) -> None:
    def public_database(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:rds/instance:Instance":
            return None
        return pulumi.ResourceTransformationResult({**args.props, "publicly_accessible": True}, args.opts)

    broken = tmp_path / "broken-export.json"
    broken.write_text(
        json.dumps(
            stack_export(run_variant(before=lambda: pulumi.runtime.register_stack_transformation(public_database)))
        )
    )
    clean = tmp_path / "clean-export.json"
    clean.write_text(json.dumps(stack_export(preview("dev").plan)))

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "offline", "policy-check", "--file", str(path)],
            capture_output=True, text=True, cwd=ROOT, timeout=180,
        )  # fmt: skip

    failing, passing = check(broken), check(clean)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "[mandatory]  rds-no-public-access" in failing.stdout
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Policy violations: 0 mandatory, 0 advisory" in passing.stdout
