"""AWS conformance preflight: checks every planned resource's literal inputs against AWS's own
machine-readable references before the policy pack runs.

Three sources, each finding names its source:
* CloudFormation resource provider schemas shipped in cfn-lint (`offline/preflight/cfn.py`), through
  one Pulumi -> CloudFormation property table (`offline/preflight/mapping.py`);
* botocore API models for nested request structures (`offline/preflight/apimodels.py`);
* a short table of documented cross-field rules, each with its source link (`offline/preflight/rules.py`).

A finding is `certain` (AWS rejects the request, or the resource can never work: the preview exits 1)
or `advisory` (deprecated values, quotas, values the provider silently drops: listed only). Unknown
values and secrets are skipped. Types in no table are reported as not checked.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from offline.plan import Plan, PlannedResource

CERTAIN, ADVISORY = "certain", "advisory"


@dataclass(frozen=True)
class Finding:
    urn: str
    property: str
    value: Any
    rule: str
    """`cfn-schema:<keyword>`, `api-model:<Shape>.<keyword>` or a cross-field rule id."""
    message: str
    source: str
    level: str = CERTAIN


@dataclass
class Coverage:
    resources: int = 0
    checked_types: set[str] = field(default_factory=set)
    unchecked_types: Counter[str] = field(default_factory=Counter)
    values_checked: int = 0
    """(resource, property) values checked against a schema or API model."""
    values_unmapped: int = 0
    """Literal values of checked types that no table covers."""
    rule_evaluations: int = 0


@dataclass
class PreflightReport:
    findings: list[Finding]
    coverage: Coverage
    seconds: float

    @property
    def certain(self) -> list[Finding]:
        return [f for f in self.findings if f.level == CERTAIN]

    @property
    def advisories(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ADVISORY]


def run_preflight(plan: Plan) -> PreflightReport:
    from offline.preflight import engine, rules

    started = time.perf_counter()
    coverage = Coverage()
    findings: list[Finding] = []
    resources = [r for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    local_packages = ("pulumi", plan.project)  # the stack, providers and our own components
    for remote in (
        r for r in plan.resources if r.remote or (not r.custom and r.type.split(":")[0] not in local_packages)
    ):
        # e.g. awsx:ec2:Vpc: the awsx provider declares its children, which never run offline.
        coverage.unchecked_types[f"{remote.type} (remote component, children invisible offline)"] += 1
    for resource in resources:
        findings.extend(engine.check_resource(resource, coverage))
    findings.extend(rules.run_rules(plan, resources, coverage))
    coverage.resources = len(resources)
    return PreflightReport(_dedupe(findings), coverage, time.perf_counter() - started)


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.urn, f.property, f.rule)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _shown(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def format_report(report: PreflightReport) -> str:
    from offline.preflight.apimodels import botocore_version
    from offline.preflight.cfn import schema_version

    lines = ["AWS conformance preflight:"]
    for level, title in ((CERTAIN, "AWS would reject"), (ADVISORY, "Advisory")):
        group = [f for f in report.findings if f.level == level]
        if not group:
            continue
        lines.append(f"  {title} ({len(group)}):")
        for f in group:
            lines.append(f"    [{f.rule}] {f.urn}")
            lines.append(f"        {f.property} = {_shown(f.value)}: {f.message}")
            lines.append(f"        source: {f.source}")
    c = report.coverage
    not_checked = ", ".join(f"{t} ({n})" for t, n in sorted(c.unchecked_types.items())) or "none"
    lines.append(
        f"Preflight: {len(report.certain)} certain, {len(report.advisories)} advisory; checked {c.resources - sum(c.unchecked_types.values())} "
        f"of {c.resources} resources ({len(c.checked_types)} types), {c.values_checked} property values "
        f"({c.values_unmapped} literal values outside the tables), {c.rule_evaluations} cross-field rule checks; "
        f"types not checked: {not_checked} "
        f"[cfn-lint schemas {schema_version()}, botocore {botocore_version()}; {report.seconds:.2f}s]"
    )
    return "\n".join(lines) + "\n"


def resource_label(resource: PlannedResource) -> str:
    return resource.urn
