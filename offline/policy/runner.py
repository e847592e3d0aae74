"""One run of a policy pack over a plan: the RPCs in the engine's order (see the package docstring)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from offline.plan import Plan, PlannedResource
from offline.policy.config import (
    PolicyProject,
    load_policy_project,
    parse_user_config,
    reconcile_config,
    validate_config,
)
from offline.policy.process import PackProcess, connect, pack_command, pack_environment
from offline.policy.protocol import (
    LEVEL_FROM_PROTO,
    LEVEL_TO_PROTO,
    OFFLINE_ENGINE_ADDRESS,
    POLICY_TYPE_FROM_PROTO,
    SEVERITY_FROM_PROTO,
    build_analyze_request,
    build_analyze_stack_request,
)
from offline.policy.report import (
    PolicyConfigError,
    PolicyInfo,
    PolicyNotApplicable,
    PolicyPackError,
    PolicyRemediation,
    PolicyReport,
    PolicyViolation,
    root_stack_urn,
)

RESOURCE_CALLS_IN_FLIGHT = 4
"""Resources whose Remediate/Analyze calls may be in flight at once (the Python policy SDK's gRPC server
runs 4 worker threads: `pulumi_policy/policy.py`, `futures.ThreadPoolExecutor(max_workers=4)`)."""


class _Analyzer:
    """Thin client that turns RPC failures into PolicyPackError with the pack's stderr."""

    def __init__(self, channel: Any, process: PackProcess, timeout: float) -> None:
        self.stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        self.process = process
        self.timeout = timeout

    def call(self, method: str, request: Any, *, optional: bool = False) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if optional and code == grpc.StatusCode.UNIMPLEMENTED:
                return None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            self.process.settle(2.0 if code == grpc.StatusCode.UNAVAILABLE else 0.2)
            raise PolicyPackError(
                f"policy pack {method} failed: {code.name if code else 'error'}: {details}",
                stderr=self.process.stderr_text(),
                pid=self.process.pid,
            ) from None


def _policy_infos(info: analyzer_pb2.AnalyzerInfo) -> list[PolicyInfo]:
    policies = []
    for p in info.policies:
        schema = json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
        policies.append(
            PolicyInfo(
                name=p.name,
                description=p.description,
                enforcement_level=LEVEL_FROM_PROTO[p.enforcementLevel],
                policy_type=POLICY_TYPE_FROM_PROTO.get(p.policy_type, "unknown"),
                severity=SEVERITY_FROM_PROTO.get(p.severity, ""),
                display_name=p.displayName,
                config_schema=schema,
                required_config=tuple(p.configSchema.required) if p.HasField("configSchema") else (),
                remediation=p.remediation_steps,
            )
        )
    return sorted(policies, key=lambda p: p.name)  # the engine sorts them by name too


def run_policy_pack(
    plan: Plan,
    pack_dir: Path = Path("policies"),
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    timeout: float = 60,
    *,
    stack_config: Mapping[str, str] | None = None,
    organization: str = "",
    stack_tags: Mapping[str, str] | None = None,
    dry_run: bool = True,
) -> PolicyReport:
    """Run the policy pack in `pack_dir` over `plan` and return what it reported.

    `config` is the policy pack config (`--policy-pack-config`): a dict or the path of a JSON file.
    `timeout` bounds the pack's start-up and each RPC, in seconds. The pack process is always stopped
    before this returns or raises. Raises PolicyPackError (or PolicyConfigError) with the pack's stderr.
    """
    with PolicySession(
        pack_dir,
        config,
        timeout,
        project=plan.project,
        stack=plan.stack,
        stack_config=stack_config,
        organization=organization,
        dry_run=dry_run,
    ) as session:
        report = session.analyze(plan, stack_config=stack_config, stack_tags=stack_tags)
    report.pack_log = session.process.log_text()  # complete now that the pack has exited
    return report


class PolicySession:
    """One policy pack process serving the plans of several stacks, one after another.

    `pulumi preview --policy-pack` starts the pack once per stack; previewing every stack in one command
    (`python -m offline preview --all-stacks`) starts it once and, for each plan, runs the same RPC
    sequence as `run_policy_pack` (ConfigureStack with that stack's identity, GetAnalyzerInfo, Configure,
    Remediate/Analyze per resource, AnalyzeStack). The pack process starts as soon as the session is
    created, so it boots on the other core while the first program runs; `analyze` waits for it.

    What a pack reads from its environment at start-up (`PULUMI_STACK`, `PULUMI_CONFIG`, which the
    Python policy SDK turns into `pulumi.get_stack()` and config) is the first stack's; the later stacks
    reach the pack only through their requests. This pack's policies read neither (they key environment
    rules on the `Environment` tag), and `tests/test_multi_stack.py` checks that every stack's report
    is the same as from a pack started for that stack alone.
    """

    def __init__(
        self,
        pack_dir: Path | str = Path("policies"),
        config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        timeout: float = 60,
        *,
        project: str,
        stack: str,
        stack_config: Mapping[str, str] | None = None,
        organization: str = "",
        dry_run: bool = True,
    ) -> None:
        self.pack_dir = Path(pack_dir)
        self.timeout = timeout
        self.organization = organization
        self.dry_run = dry_run
        self.project = load_policy_project(self.pack_dir)
        self.user_config = parse_user_config(config)
        argv, env_changes = pack_command(self.pack_dir, self.project)
        env = pack_environment(
            project=project,
            stack=stack,
            env_changes=env_changes,
            stack_config=stack_config,
            organization=organization,
            dry_run=dry_run,
        )
        self.process = PackProcess(argv, self.pack_dir.resolve(), env)
        self._channel: Any = None
        self._analyzer: _Analyzer | None = None
        self._log_seen = 0

    def __enter__(self) -> PolicySession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def analyze(
        self,
        plan: Plan,
        *,
        stack_config: Mapping[str, str] | None = None,
        stack_tags: Mapping[str, str] | None = None,
    ) -> PolicyReport:
        """Run the pack over one plan. Raises PolicyPackError (the session is then closed)."""
        try:
            if self._analyzer is None:
                self._channel = connect(self.process, self.timeout)
                self._analyzer = _Analyzer(self._channel, self.process, self.timeout)
            report = _analyze(
                self._analyzer,
                plan,
                self.pack_dir,
                self.project,
                self.user_config,
                stack_config,
                self.organization,
                stack_tags,
                self.dry_run,
            )
        except BaseException:
            self.close()
            raise
        log = self.process.log_text()
        report.pack_log = log[self._log_seen :]
        self._log_seen = len(log)
        report.pack_pid = self.process.pid
        return report

    def close(self) -> None:
        """Close the channel and stop the pack (and its process group). Safe to call twice."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._analyzer = None
        self.process.stop()


def _analyze(
    analyzer: _Analyzer,
    plan: Plan,
    pack_dir: Path,
    project: PolicyProject,
    user_config: Mapping[str, Mapping[str, Any]],
    stack_config: Mapping[str, str] | None,
    organization: str,
    stack_tags: Mapping[str, str] | None,
    dry_run: bool,
) -> PolicyReport:
    directory = str(pack_dir.resolve())
    analyzer.call(
        "Handshake",
        analyzer_pb2.AnalyzerHandshakeRequest(
            engine_address=OFFLINE_ENGINE_ADDRESS, root_directory=directory, program_directory=directory
        ),
        optional=True,
    )
    analyzer.call(
        "ConfigureStack",
        analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=plan.stack,
            project=plan.project,
            organization=organization,
            dry_run=dry_run,
            config=dict(stack_config or {}),
            tags=dict(stack_tags or {}),
        ),
        optional=True,
    )
    info = analyzer.call("GetAnalyzerInfo", empty_pb2.Empty())
    # The version from PulumiPolicy.yaml wins over the one the pack reports (Python packs say 0.0.1).
    version = project.version or info.version
    policies = _policy_infos(info)
    report = PolicyReport(pack_name=info.name, pack_version=version, pack_path=str(pack_dir))

    if info.supportsConfig:
        reconciled = reconcile_config(info, policies, user_config)
        errors = validate_config(info.name, version, policies, reconciled)
        if errors:
            raise PolicyConfigError("\n".join(errors), pid=analyzer.process.pid)
        if reconciled:
            request = analyzer_pb2.ConfigureAnalyzerRequest()
            for name, entry in reconciled.items():
                level = entry.get("enforcementLevel", "")
                if level not in LEVEL_TO_PROTO:
                    raise PolicyConfigError(f"invalid enforcement level {level!r} for policy {name!r}")
                target = request.policyConfig[name]
                target.enforcementLevel = LEVEL_TO_PROTO[level]
                target.properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
            analyzer.call("Configure", request)
        report.config = reconciled
        configured = {name: entry["enforcementLevel"] for name, entry in reconciled.items()}
        report.policies = [
            dataclasses.replace(p, enforcement_level=configured.get(p.name, p.enforcement_level)) for p in policies
        ]
    else:
        if user_config:
            raise PolicyConfigError(f"policy pack {info.name!r} at {str(pack_dir)!r} does not support config")
        report.policies = policies

    severities = {p.name: p.severity for p in policies}

    def violation(diag: Any, urn: str) -> PolicyViolation:
        level = LEVEL_FROM_PROTO[diag.enforcementLevel]
        return PolicyViolation(
            policy_name=diag.policyName,
            policy_pack_name=diag.policyPackName,
            policy_pack_version=version,
            # A violation of a remediation policy that still fails is reported as mandatory.
            enforcement_level="mandatory" if level == "remediate" else level,
            urn=urn,
            message=diag.message,
            description=diag.description,
            severity=SEVERITY_FROM_PROTO.get(diag.severity, "") or severities.get(diag.policyName, ""),
        )

    by_urn = plan.by_urn()

    def check_resource(resource: PlannedResource) -> tuple[Any, Any]:
        """Remediate, then Analyze with the remediated inputs: the engine's two calls for one resource."""
        remediated = analyzer.call(
            "Remediate", build_analyze_request(resource, by_urn, skip_internal_keys=False), optional=True
        )
        inputs: Mapping[str, Any] = resource.inputs
        if remediated is not None:
            for item in remediated.remediations:
                if not item.diagnostic and item.HasField("properties"):
                    inputs = json_format.MessageToDict(item.properties)
        return remediated, analyzer.call("Analyze", build_analyze_request(resource, by_urn, properties=inputs))

    # The resources are independent until AnalyzeStack, so up to RESOURCE_CALLS_IN_FLIGHT of them are
    # checked at once: the pack's gRPC server has as many worker threads (pulumi_policy serves with 4),
    # and the round trips, not the pack's work, were most of the time. Results are read in plan order,
    # so the report is the same as one resource after another.
    with ThreadPoolExecutor(max_workers=RESOURCE_CALLS_IN_FLIGHT, thread_name_prefix="policy-call") as calls:
        checked = list(calls.map(check_resource, plan.resources))
    for resource, (remediated, response) in zip(plan.resources, checked, strict=True):
        if remediated is not None:
            for item in remediated.remediations:
                if item.diagnostic:
                    report.violations.append(
                        PolicyViolation(
                            policy_name=item.policyName,
                            policy_pack_name=item.policyPackName,
                            policy_pack_version=version,
                            enforcement_level="advisory",
                            urn=resource.urn,
                            message=item.diagnostic,
                            description=item.description,
                            severity=severities.get(item.policyName, ""),
                        )
                    )
                elif item.HasField("properties"):
                    report.remediations.append(
                        PolicyRemediation(item.policyName, item.policyPackName, version, resource.urn, item.description)
                    )
        # The engine files every diagnostic of Analyze under the resource it analyzed.
        report.violations.extend(violation(d, resource.urn) for d in response.diagnostics)
        report.not_applicable.extend(
            PolicyNotApplicable(n.policy_name, resource.urn, n.reason) for n in response.not_applicable
        )

    response = analyzer.call("AnalyzeStack", build_analyze_stack_request(plan), optional=True)
    if response is not None:
        stack_urn = root_stack_urn(plan.project, plan.stack)
        for diag in response.diagnostics:
            report.violations.append(violation(diag, diag.urn if diag.urn in by_urn else stack_urn))
        report.not_applicable.extend(
            PolicyNotApplicable(n.policy_name, stack_urn, n.reason) for n in response.not_applicable
        )
    return report
