"""What a policy pack run found (`PolicyReport` and its parts), its errors, and how the CLI prints it.

Pure data and text: nothing here imports gRPC or the Pulumi SDK, so the report can be built, rendered
and serialised without starting a pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

EnforcementLevel = Literal["advisory", "mandatory", "remediate", "disabled"]
ENFORCEMENT_LEVELS: tuple[EnforcementLevel, ...] = ("advisory", "mandatory", "remediate", "disabled")


# --- errors and results ---------------------------------------------------------------------------------


class PolicyPackError(RuntimeError):
    """The pack could not be started, crashed, or failed an RPC. The message includes its stderr."""

    def __init__(self, message: str, *, stderr: str = "", pid: int | None = None) -> None:
        detail = stderr.strip()
        super().__init__(f"{message}\n--- policy pack stderr ---\n{detail}" if detail else message)
        self.stderr = stderr
        self.pid = pid


class PolicyConfigError(PolicyPackError):
    """The policy pack config is unreadable or does not match the policies' config schemas."""


@dataclass(frozen=True)
class PolicyInfo:
    """One policy as `GetAnalyzerInfo` describes it (enforcement level as configured for this run)."""

    name: str
    description: str
    enforcement_level: EnforcementLevel
    policy_type: str
    """'resource', 'stack' or 'unknown'."""
    severity: str = ""
    display_name: str = ""
    config_schema: Mapping[str, Any] = field(default_factory=dict)
    """JSON schema of each config property, by property name."""
    required_config: tuple[str, ...] = ()
    remediation: str = ""
    """The policy's remediation steps (SARIF rule help)."""


@dataclass(frozen=True)
class PolicyViolation:
    """One `AnalyzeDiagnostic`, attributed to a resource URN as the engine attributes it."""

    policy_name: str
    policy_pack_name: str
    policy_pack_version: str
    enforcement_level: EnforcementLevel
    urn: str
    message: str
    """As the pack sent it; the Python SDK puts the policy description on the first line."""
    description: str
    severity: str = ""

    @property
    def resource_type(self) -> str:
        return urn_type(self.urn)

    @property
    def resource_name(self) -> str:
        return urn_name(self.urn)


@dataclass(frozen=True)
class PolicyNotApplicable:
    policy_name: str
    urn: str
    reason: str


@dataclass(frozen=True)
class PolicyRemediation:
    """A remediation the pack applied to a resource's inputs before it was analyzed."""

    policy_name: str
    policy_pack_name: str
    policy_pack_version: str
    urn: str
    description: str


@dataclass
class PolicyReport:
    """What one run of a policy pack over a plan found."""

    pack_name: str
    pack_version: str
    pack_path: str
    """The pack directory as given, which the CLI shows as `(local: <path>)`."""
    policies: list[PolicyInfo] = field(default_factory=list)
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The reconciled config sent with `Configure`: {policy: {"enforcementLevel": ..., **properties}}."""
    violations: list[PolicyViolation] = field(default_factory=list)
    not_applicable: list[PolicyNotApplicable] = field(default_factory=list)
    remediations: list[PolicyRemediation] = field(default_factory=list)
    pack_log: str = ""
    """What the pack wrote to stderr, and to stdout after its port line."""
    pack_pid: int | None = None

    @property
    def mandatory(self) -> list[PolicyViolation]:
        return [v for v in self.violations if v.enforcement_level == "mandatory"]

    @property
    def advisory(self) -> list[PolicyViolation]:
        return [v for v in self.violations if v.enforcement_level == "advisory"]

    @property
    def has_mandatory(self) -> bool:
        return any(v.enforcement_level == "mandatory" for v in self.violations)

    def counts(self) -> dict[str, int]:
        result = {"mandatory": 0, "advisory": 0}
        for violation in self.violations:
            result[violation.enforcement_level] = result.get(violation.enforcement_level, 0) + 1
        return result


# --- URNs ------------------------------------------------------------------------------------------------


def urn_type(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent types$>type::<name>` -> type (the engine's `URN.Type()`)."""
    parts = urn.split("::", 3)
    return parts[2].rsplit("$", 1)[-1] if len(parts) == 4 else ""


def urn_name(urn: str) -> str:
    parts = urn.split("::", 3)
    return parts[3] if len(parts) == 4 else urn


def root_stack_urn(project: str, stack: str) -> str:
    """`resource.DefaultRootStackURN`: where the engine files stack-policy violations without a known URN."""
    return f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"


# --- display ---------------------------------------------------------------------------------------------


def format_report(report: PolicyReport) -> str:
    """The "Policies:" section as `pulumi preview` prints it (ProgressDisplay.printPolicies), plus a count line."""
    lines = ["Policies:"]
    icon = "✅"
    for v in report.violations:
        if v.enforcement_level == "mandatory":
            icon = "❌"
            break
        icon = "⚠️"
    lines.append(f"    {icon} {report.pack_name}@v{report.pack_version} (local: {report.pack_path})")
    ordered = sorted(report.violations, key=lambda v: (v.enforcement_level, v.policy_name, v.urn))
    for v in ordered:
        lines.append(f"        - [{v.enforcement_level}]  {v.policy_name}  ({v.resource_type}: {v.resource_name})")
        for message_line in v.message.rstrip("\n").split("\n"):
            lines.append(f"          {message_line}")
    lines.append("")
    counts = report.counts()
    others = ", ".join(f"{n} {level}" for level, n in sorted(counts.items()) if level not in ("mandatory", "advisory"))
    summary = f"{counts['mandatory']} mandatory, {counts['advisory']} advisory"
    lines.append(f"Policy violations: {summary}{', ' + others if others else ''}")
    return "\n".join(lines) + "\n"


PolicyRunnerError = PolicyPackError
"""Alias: the error type `python -m offline` catches."""
