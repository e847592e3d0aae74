"""The policy pack's project file (`PulumiPolicy.yaml`) and its config, reconciled and validated as the engine does.

pulumi/pulumi `pkg/resource/analyzer/config.go` (`LoadPolicyPackConfigFromFile`, `ReconcilePolicyPackConfig`,
`applyConfig`, `ValidatePolicyPackConfig`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsonschema
import yaml
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2

from offline.policy.protocol import LEVEL_FROM_PROTO
from offline.policy.report import ENFORCEMENT_LEVELS, EnforcementLevel, PolicyConfigError, PolicyInfo, PolicyPackError


@dataclass(frozen=True)
class PolicyProject:
    runtime: str
    options: Mapping[str, Any]
    version: str
    description: str


def load_policy_project(pack_dir: Path) -> PolicyProject:
    path = pack_dir / "PulumiPolicy.yaml"
    if not path.is_file():
        raise PolicyPackError(f"failed to load Pulumi policy project located at {str(pack_dir)!r}: no {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PolicyPackError(f"failed to load Pulumi policy project {path}: {exc}") from None
    runtime = data.get("runtime")
    options: Mapping[str, Any] = {}
    if isinstance(runtime, Mapping):
        options = runtime.get("options") or {}
        runtime = runtime.get("name")
    if runtime != "python":
        raise PolicyPackError(
            f"{path}: runtime {runtime!r} is not supported offline; only Python policy packs can be run here"
        )
    return PolicyProject(
        runtime="python",
        options=options,
        version=str(data.get("version") or ""),
        description=str(data.get("description") or ""),
    )


def parse_user_config(config: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """`LoadPolicyPackConfigFromFile`: {policy: level} or {policy: {"enforcementLevel"?: level, **props}}."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyConfigError(f"cannot read policy pack config {path}: {exc}") from None
        if not text.strip():
            return {}
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyConfigError(f"policy pack config {path} is not valid JSON: {exc}") from None
        if not isinstance(config, Mapping):
            raise PolicyConfigError(f"policy pack config {path} must be a JSON object")
    result: dict[str, dict[str, Any]] = {}
    for policy, value in config.items():
        if isinstance(value, str):
            entry: dict[str, Any] = {"enforcementLevel": _check_level(policy, value)}
        elif isinstance(value, Mapping):
            entry = {k: v for k, v in value.items() if k != "enforcementLevel"}
            if "enforcementLevel" in value:
                entry["enforcementLevel"] = _check_level(policy, value["enforcementLevel"])
        else:
            raise PolicyConfigError(f"parsing {policy!r}: {value!r} is not a valid value; must be a string or object")
        if entry:  # the engine drops empty entries
            result[policy] = entry
    return result


def _check_level(policy: str, level: Any) -> EnforcementLevel:
    if level not in ENFORCEMENT_LEVELS:
        raise PolicyConfigError(f"parsing enforcement level for {policy!r}: {level!r} is not a valid enforcement level")
    return cast(EnforcementLevel, level)


def _apply_config(result: dict[str, dict[str, Any]], given: Mapping[str, Mapping[str, Any]]) -> None:
    """`applyConfig` from pkg/resource/analyzer/config.go, including its handling of the "all" key."""
    all_level = given.get("all", {}).get("enforcementLevel")
    if all_level:
        for entry in result.values():
            entry["enforcementLevel"] = all_level
    for policy, given_entry in given.items():
        merged = dict(result.get(policy, {}))
        merged.update(given_entry)
        result[policy] = merged


def reconcile_config(
    info: analyzer_pb2.AnalyzerInfo, policies: list[PolicyInfo], user: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for policy in policies:
        entry: dict[str, Any] = {"enforcementLevel": policy.enforcement_level}
        for key, schema in policy.config_schema.items():
            if isinstance(schema, Mapping) and "default" in schema:
                entry[key] = schema["default"]
        result[policy.name] = entry
    # An initial-config entry always carries a level on the wire (ADVISORY when the pack set none), and
    # the engine applies it like any other: we keep that behaviour rather than second-guess it.
    initial = {
        name: {**json_format.MessageToDict(cfg.properties), "enforcementLevel": LEVEL_FROM_PROTO[cfg.enforcementLevel]}
        for name, cfg in info.initialConfig.items()
    }
    _apply_config(result, initial)
    _apply_config(result, user)
    return result


def validate_config(
    pack: str, version: str, policies: list[PolicyInfo], config: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    errors: list[str] = []
    for policy in policies:
        if not policy.config_schema and not policy.required_config:
            continue
        schema: dict[str, Any] = {"type": "object", "properties": dict(policy.config_schema)}
        if policy.required_config:
            schema["required"] = list(policy.required_config)
        props = {k: v for k, v in config.get(policy.name, {}).items() if k != "enforcementLevel"}
        for error in sorted(jsonschema.Draft7Validator(schema).iter_errors(props), key=str):
            where = ".".join(str(p) for p in error.absolute_path)
            errors.append(
                f"validating policy config: {pack} {version}  {policy.name}: {where + ': ' if where else ''}"
                f"{error.message}"
            )
    return sorted(errors)
