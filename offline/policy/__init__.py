"""Run a CrossGuard policy pack over a recorded `Plan`, speaking the Analyzer gRPC protocol as the engine does.

`pulumi preview --policy-pack policies` does four things with a Python pack, and this module does the same
ones, in the same order, with the same messages (pulumi/pulumi, `pkg/resource/plugin/analyzer_plugin.go`,
`pkg/engine/update.go` `installAndLoadPolicyPlugins`, `pkg/resource/deploy/step_generator.go`):

1. Start the pack the way the `pulumi-analyzer-policy-python` shim does: `python -u -m pulumi.policy
   <engine-address> .` with the pack directory as working directory, the runtime options of
   `PulumiPolicy.yaml` appended as `-name=value`, and `PULUMI_PROJECT`/`PULUMI_STACK`/`PULUMI_DRY_RUN`/
   `PULUMI_CONFIG` in the environment. The first line on stdout is the port of its Analyzer server.
2. `Handshake` and `ConfigureStack` (both optional for a pack), `GetAnalyzerInfo`, then `Configure` with the
   config reconciled from the policies' schema defaults, the pack's initial config and the user's config
   (what `--policy-pack-config` gives), validated against the policies' config schemas.
3. For every registered resource, `Remediate` and then `Analyze` with its inputs. The engine does this for
   every resource registration that reaches the step generator (custom resources, components, providers
   and the stack alike), so this runner does too.
4. `AnalyzeStack` once with every resource's outputs, parent, dependencies and property dependencies.


Modules: `report` (results, errors, the "Policies:" text), `protocol` (enums, property marshalling,
request builders), `config` (`PulumiPolicy.yaml` and the pack config), `process` (the pack's host
process), `runner` (the RPC sequence), `formats` (the results as JSON and SARIF, the exit status by severity).
"""

from __future__ import annotations

from offline.policy.process import PackProcess
from offline.policy.protocol import (
    OFFLINE_ENGINE_ADDRESS,
    OUTPUT_VALUE_SIG,
    RESOURCE_REFERENCE_SIG,
    SECRET_SIG,
    SIG_KEY,
    build_analyze_request,
    build_analyze_stack_request,
    engine_properties,
)
from offline.policy.report import (
    ENFORCEMENT_LEVELS,
    EnforcementLevel,
    PolicyConfigError,
    PolicyInfo,
    PolicyNotApplicable,
    PolicyPackError,
    PolicyRemediation,
    PolicyReport,
    PolicyRunnerError,
    PolicyViolation,
    format_report,
    root_stack_urn,
    urn_name,
    urn_type,
)
from offline.policy.runner import PolicySession, run_policy_pack

__all__ = [
    "ENFORCEMENT_LEVELS",
    "OFFLINE_ENGINE_ADDRESS",
    "OUTPUT_VALUE_SIG",
    "RESOURCE_REFERENCE_SIG",
    "SECRET_SIG",
    "SIG_KEY",
    "EnforcementLevel",
    "PackProcess",
    "PolicyConfigError",
    "PolicyInfo",
    "PolicyNotApplicable",
    "PolicyPackError",
    "PolicyRemediation",
    "PolicyReport",
    "PolicyRunnerError",
    "PolicySession",
    "PolicyViolation",
    "build_analyze_request",
    "build_analyze_stack_request",
    "engine_properties",
    "format_report",
    "root_stack_urn",
    "run_policy_pack",
    "urn_name",
    "urn_type",
]
