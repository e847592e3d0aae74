"""The recorded plan as the files the Pulumi CLI writes, and back.

- `preview_json(plan)`: the shape of `pulumi preview --json` (steps with op, urn, provider and
  newState: type, custom, inputs, parent, dependencies, propertyDependencies).
- `stack_export(plan)`: a `pulumi stack export` deployment (version 3), which
  `pulumi policy analyze --file` and `pulumi stack import` understand.
- `load_plan(path)`: reads either file back into a `Plan` (for `python -m offline policy-check`).

The real engine registers a default provider per package (`pulumi:providers:aws` ...) and links each
custom resource to it; the SDK's mock runtime does not, so both exports add them the same way.
Secret values are never written in clear: the preview shows `[secret]` and the export stores the
engine's secret object with a placeholder ciphertext (nothing here can encrypt for a real stack).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from offline.plan import Plan, PlannedResource

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
PLUGIN_VERSIONS = {"aws": "7.51.1", "awsx": "3.11.0", "docker-build": "0.0.22", "tls": "5.6.2"}
ENGINE_VERSION = "v3.272.0"


def _package(type_token: str) -> str:
    return type_token.split(":", 1)[0]


def default_provider_urn(plan: Plan, package: str) -> str:
    version = PLUGIN_VERSIONS.get(package, "0.0.0").replace(".", "_")
    return f"urn:pulumi:{plan.stack}::{plan.project}::pulumi:providers:{package}::default_{version}"


def _provider_ref(plan: Plan, resource: PlannedResource) -> str:
    if resource.provider:
        return resource.provider
    package = _package(resource.type)
    if not (resource.custom or resource.remote) or package == "pulumi":
        return ""
    return f"{default_provider_urn(plan, package)}::04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _default_providers(plan: Plan) -> list[dict[str, Any]]:
    packages = sorted(
        {_package(r.type) for r in plan.resources if (r.custom or r.remote) and not r.provider} - {"pulumi"}
    )
    providers = []
    for package in packages:
        inputs: dict[str, Any] = {"version": PLUGIN_VERSIONS.get(package, "0.0.0")}
        if package == "aws":
            inputs["region"] = _aws_region(plan)
        providers.append(
            {
                "urn": default_provider_urn(plan, package),
                "custom": True,
                "id": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
                "type": f"pulumi:providers:{package}",
                "inputs": inputs,
                "outputs": inputs,
            }
        )
    return providers


def _aws_region(plan: Plan) -> str:
    for r in plan.resources:
        region = r.outputs.get("region") if r.type.startswith("aws:") else None
        if isinstance(region, str):
            return region
    return "us-east-1"


def _mask_secrets(value: Any, *, for_export: bool) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            if for_export:
                return {SECRET_SIG_KEY: SECRET_SIG, "ciphertext": "offline-preview:not-encrypted"}
            return "[secret]"
        return {k: _mask_secrets(v, for_export=for_export) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v, for_export=for_export) for v in value]
    return value


def _state(plan: Plan, r: PlannedResource, *, for_export: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "urn": r.urn,
        "custom": r.custom,
        "type": r.type,
        "inputs": _mask_secrets(r.inputs, for_export=for_export),
        "outputs": _mask_secrets(r.outputs, for_export=for_export),
    }
    if r.id:
        state["id"] = r.id
    if r.parent:
        state["parent"] = r.parent
    if r.protect:
        state["protect"] = True
    if r.retain_on_delete:
        state["retainOnDelete"] = True
    if r.dependencies:
        state["dependencies"] = r.dependencies
    if r.property_dependencies:
        state["propertyDependencies"] = r.property_dependencies
    provider = _provider_ref(plan, r)
    if provider:
        state["provider"] = provider
    if r.secret_outputs:
        state["additionalSecretOutputs"] = r.secret_outputs
    return state


def preview_json(plan: Plan, config: dict[str, str] | None = None) -> dict[str, Any]:
    """The document `pulumi preview --json` prints, for a stack with nothing deployed yet."""
    steps = []
    for default_provider in _default_providers(plan):
        steps.append({"op": "create", "urn": default_provider["urn"], "newState": default_provider})
    for r in plan.resources:
        step: dict[str, Any] = {"op": "create", "urn": r.urn, "newState": _state(plan, r, for_export=False)}
        provider = _provider_ref(plan, r)
        if provider:
            step["provider"] = provider
        steps.append(step)
    return {
        "config": {k: v for k, v in sorted((config or {}).items())},
        "steps": steps,
        "outputs": _mask_secrets(plan.outputs, for_export=False),
        "changeSummary": {"create": len(steps)},
    }


def stack_export(plan: Plan) -> dict[str, Any]:
    """A `pulumi stack export` document (deployment version 3) as if the preview had been applied."""
    resources = list(_default_providers(plan))
    for r in plan.resources:
        state = _state(plan, r, for_export=True)
        if r.type == "pulumi:pulumi:Stack":
            state["outputs"] = _mask_secrets(plan.outputs, for_export=True)
        resources.append(state)
    stack_first = sorted(resources, key=lambda s: s["type"] != "pulumi:pulumi:Stack")
    return {
        "version": 3,
        "deployment": {
            "manifest": {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "magic": "",
                "version": ENGINE_VERSION,
            },
            "secrets_providers": {"type": "passphrase", "state": {"salt": "offline-preview"}},
            "resources": stack_first,
        },
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


class PlanFileError(Exception):
    """A file given to policy-check is neither a preview JSON nor a stack export."""


def load_plan(path: Path) -> Plan:
    """Read a `pulumi preview --json` document or a `pulumi stack export` back into a Plan."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PlanFileError(f"{path}: cannot read JSON ({exc})") from None
    if isinstance(document, dict) and "steps" in document:
        states = [s["newState"] for s in document["steps"] if isinstance(s, dict) and "newState" in s]
    elif isinstance(document, dict) and isinstance(document.get("deployment"), dict):
        if document.get("version") != 3:
            raise PlanFileError(f"{path}: deployment version {document.get('version')!r}; expected 3")
        states = list(document["deployment"].get("resources") or [])
    else:
        raise PlanFileError(f"{path}: not a `pulumi preview --json` document nor a `pulumi stack export`")
    stack_urn = next((s["urn"] for s in states if s.get("type") == "pulumi:pulumi:Stack"), "")
    if not stack_urn:
        raise PlanFileError(f"{path}: has no pulumi:pulumi:Stack resource")
    _, _, rest = stack_urn.partition("urn:pulumi:")
    stack, project = rest.split("::")[0:2]
    plan = Plan(project=project, stack=stack)
    for s in states:
        if str(s.get("type", "")).startswith("pulumi:providers:"):
            continue
        plan.resources.append(
            PlannedResource(
                urn=s["urn"],
                type=s["type"],
                name=s["urn"].rsplit("::", 1)[-1],
                custom=bool(s.get("custom")),
                parent=s.get("parent", ""),
                provider=s.get("provider", "") if "default_" not in s.get("provider", "") else "",
                id=s.get("id", ""),
                inputs=s.get("inputs") or {},
                outputs=s.get("outputs") or {},
                dependencies=list(s.get("dependencies") or []),
                property_dependencies=dict(s.get("propertyDependencies") or {}),
                protect=bool(s.get("protect")),
            )
        )
        if s["type"] == "pulumi:pulumi:Stack":
            plan.outputs = s.get("outputs") or {}
    return plan
