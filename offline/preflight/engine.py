"""Per-resource checks: the CloudFormation schema through the mapping table, and the botocore API
models for the nested structures listed in API_CHECKS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from offline.plan import PlannedResource
from offline.preflight import ADVISORY, CERTAIN, Coverage, Finding, cfn
from offline.preflight import apimodels as api
from offline.preflight.mapping import NESTED_KEYS, TABLE, TypeMap
from offline.preflight.values import get_path, is_opaque

PROVIDER_DEFAULTS = {
    # Required in CloudFormation, but the Pulumi provider fills them in when unset.
    ("aws:ec2/securityGroup:SecurityGroup", "GroupDescription"),  # "Managed by Pulumi"
    ("aws:rds/parameterGroup:ParameterGroup", "Description"),
    ("aws:rds/subnetGroup:SubnetGroup", "DBSubnetGroupDescription"),
    ("aws:elasticache/subnetGroup:SubnetGroup", "Description"),
    ("aws:lb/listenerRule:ListenerRule", "Priority"),  # next free priority
    ("aws:kms/alias:Alias", "AliasName"),
    ("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "Qualifier"),  # unqualified: $LATEST
    # An imported certificate (ACM ImportCertificate: certificateBody + privateKey) has no DomainName.
    ("aws:acm/certificate:Certificate", "DomainName"),
}


def _cfn_source(cfn_type: str, cfn_path: str) -> str:
    return f"CloudFormation schema {cfn_type} {cfn_path} (cfn-lint {cfn.schema_version()[:10]}; {cfn.SCHEMA_DOC})"


def check_resource(resource: PlannedResource, coverage: Coverage) -> Iterator[Finding]:
    table = TABLE.get(resource.type)
    doc = cfn.schema(table.cfn_type) if table else None
    if table is None or doc is None:
        coverage.unchecked_types[resource.type] += 1
        return
    coverage.checked_types.add(resource.type)
    yield from _check_schema(resource, table, doc, coverage)
    for check in API_CHECKS.get(resource.type, ()):
        yield from check(resource, coverage)


def _check_schema(
    resource: PlannedResource, table: TypeMap, doc: dict[str, Any], coverage: Coverage
) -> Iterator[Finding]:
    inputs = resource.inputs
    covered_tops = {path.split(".")[0] for path in table.props}
    for key, value in inputs.items():
        if key not in covered_tops and not is_opaque(value):
            coverage.values_unmapped += 1
    for pulumi_path, cfn_path in table.props.items():
        if cfn_path is None:
            continue
        found, value = get_path(inputs, pulumi_path)
        if not found or is_opaque(value):
            continue
        node = cfn.property_node(doc, cfn_path)
        if node is None:
            continue
        coverage.values_checked += 1
        for problem in cfn.validate(doc, node, value, key_map=NESTED_KEYS):
            where = f"{pulumi_path}{_pulumi_suffix(problem.path)}"
            yield Finding(
                resource.urn,
                where,
                _at(value, problem.path),
                f"cfn-schema:{problem.keyword}",
                f"{cfn_path}{'.' + problem.path if problem.path and not problem.path.startswith('[') else problem.path} "
                f"{problem.message}",
                _cfn_source(table.cfn_type, cfn_path),
            )
    present = {
        cfn_path.split(".")[0].removesuffix("[]")
        for p, cfn_path in table.props.items()
        if cfn_path and get_path(inputs, p)[0]
    }
    mapped = {cfn_path.split(".")[0].removesuffix("[]") for cfn_path in table.props.values() if cfn_path}
    for required in doc.get("required") or []:
        if required in mapped and required not in present and (resource.type, required) not in PROVIDER_DEFAULTS:
            pulumi_names = [p for p, c in table.props.items() if c and c.split(".")[0] == required]
            if table.autoname and table.autoname in pulumi_names:
                continue
            yield Finding(
                resource.urn,
                pulumi_names[0] if pulumi_names else required,
                None,
                "cfn-schema:required",
                f"{required} is required by {table.cfn_type}",
                _cfn_source(table.cfn_type, required),
            )


def _pulumi_suffix(problem_path: str) -> str:
    if not problem_path:
        return ""
    return problem_path if problem_path.startswith("[") else f".{problem_path}"


def _at(value: Any, path: str) -> Any:
    """The part of `value` a problem path points at (best effort, for the report)."""
    import re

    current = value
    for name, index in re.findall(r"\.?([^.\[\]]+)|\[(\d+)\]", path):
        if index and isinstance(current, list | tuple) and int(index) < len(current):
            current = current[int(index)]
        elif name and isinstance(current, dict):
            match = next((k for k in current if k[:1].upper() + k[1:] == name or k == name), None)
            if match is None:
                return current
            current = current[match]
    return current


# --- botocore API model checks ----------------------------------------------------------------------
def _api_findings(
    resource: PlannedResource, prop: str, service: str, shape_name: str, items: list[Any], coverage: Coverage
) -> Iterator[Finding]:
    model = api.shape(service, shape_name)
    source = f"botocore {api.botocore_version()} {service} {shape_name} ({api.API_DOC[service]})"
    for i, item in enumerate(items):
        coverage.values_checked += 1
        for problem in api.validate_shape(model, item):
            where = f"{prop}[{i}]" + (f".{problem.path}" if problem.path else "")
            yield Finding(
                resource.urn,
                where,
                _at(item, problem.path),
                f"api-model:{shape_name}.{problem.keyword}",
                f"{problem.path or shape_name} {problem.message}"
                + ("" if problem.certain else " (the provider drops it)"),
                source,
                CERTAIN if problem.certain else ADVISORY,
            )


def _container_definitions(resource: PlannedResource, coverage: Coverage) -> Iterator[Finding]:
    raw = resource.inputs.get("containerDefinitions")
    if raw is None or is_opaque(raw):
        return
    try:
        definitions = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        yield Finding(
            resource.urn,
            "containerDefinitions",
            raw,
            "api-model:ContainerDefinition.json",
            f"is not JSON ({exc})",
            api.API_DOC["ecs"],
        )
        return
    if not isinstance(definitions, list):
        definitions = [definitions]
    yield from _api_findings(resource, "containerDefinitions", "ecs", "ContainerDefinition", definitions, coverage)


def _listener_actions(prop: str) -> Callable[[PlannedResource, Coverage], Iterator[Finding]]:
    def check(resource: PlannedResource, coverage: Coverage) -> Iterator[Finding]:
        actions = resource.inputs.get(prop)
        if isinstance(actions, list):
            translated = [api.translate(a, api.ELB_ACTION_KEYS) for a in actions]
            yield from _api_findings(resource, prop, "elbv2", "Action", translated, coverage)

    return check


def _rule_conditions(resource: PlannedResource, coverage: Coverage) -> Iterator[Finding]:
    conditions = resource.inputs.get("conditions")
    if isinstance(conditions, list):
        translated = [api.translate(c, api.ELB_CONDITION_KEYS) for c in conditions]
        yield from _api_findings(resource, "conditions", "elbv2", "RuleCondition", translated, coverage)


def _event_target(resource: PlannedResource, coverage: Coverage) -> Iterator[Finding]:
    target = api.translate(resource.inputs, api.EVENT_TARGET_KEYS, api.EVENT_TARGET_DROP)
    target.setdefault("Id", "pulumi-generated-id")  # the provider generates the target id when unset
    yield from _api_findings(resource, "target", "events", "Target", [target], coverage)


def _waf_rules(resource: PlannedResource, coverage: Coverage) -> Iterator[Finding]:
    rules = resource.inputs.get("rules")
    if isinstance(rules, list):
        translated = [api.translate(r, api.WAF_RULE_KEYS) for r in rules]
        yield from _api_findings(resource, "rules", "wafv2", "Rule", translated, coverage)


API_CHECKS: dict[str, tuple[Callable[[PlannedResource, Coverage], Iterator[Finding]], ...]] = {
    "aws:ecs/taskDefinition:TaskDefinition": (_container_definitions,),
    "aws:lb/listener:Listener": (_listener_actions("defaultActions"),),
    "aws:lb/listenerRule:ListenerRule": (_listener_actions("actions"), _rule_conditions),
    "aws:cloudwatch/eventTarget:EventTarget": (_event_target,),
    "aws:wafv2/webAcl:WebAcl": (_waf_rules,),
}
