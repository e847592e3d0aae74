"""CloudFormation resource provider schemas, as shipped inside the `cfn-lint` package.

cfn-lint bundles every registry schema (`cfnlint/data/schemas/resources/<hash>.json`) with a
per-region index (`providers/<region>.json`: type -> hash). We read only the few schemas the plan
needs, once per process, and validate literal values against the JSON-schema keywords AWS's
handlers enforce: type, enum, pattern, minLength/maxLength, minimum/maximum, minItems/maxItems,
uniqueItems and required.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REGION = "us-east-1"
SCHEMA_DOC = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-template-resource-type-ref.html"
)


@cache
def _data_dir() -> Path:
    """cfn-lint's schema folder, found without importing cfn-lint (its import takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("cfnlint")
    if spec is None or spec.origin is None:
        raise RuntimeError("cfn-lint is not installed (it ships the CloudFormation schemas); run make setup")
    return Path(spec.origin).parent / "data" / "schemas"


@cache
def _index(region: str = REGION) -> dict[str, str]:
    index: dict[str, str] = json.loads((_data_dir() / "providers" / f"{region}.json").read_text())
    return index


@cache
def schema(cfn_type: str) -> dict[str, Any] | None:
    """The resource provider schema of `cfn_type` (e.g. AWS::SQS::Queue), or None if cfn-lint has none."""
    digest = _index().get(cfn_type)
    if digest is None:
        return None
    loaded: dict[str, Any] = json.loads((_data_dir() / "resources" / f"{digest}.json").read_text())
    return loaded


def schema_version() -> str:
    """The date cfn-lint's bundled schemas were generated (`version.json`)."""
    try:
        return str(json.loads((_data_dir() / "version.json").read_text()).get("schema_date", "unknown"))
    except (OSError, ValueError):
        return "unknown"


@dataclass(frozen=True)
class Problem:
    path: str
    """Where inside the checked value (`Foo[0].Bar`), '' for the value itself."""
    keyword: str
    message: str


def resolve(doc: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local `$ref`s (`#/definitions/X`)."""
    seen = 0
    while "$ref" in node and seen < 20:
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            return node
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


def property_node(doc: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The schema of a dotted CloudFormation property path (`DeploymentConfiguration.MaximumPercent`,
    `CapacityProviderStrategy[].Weight`), or None when the schema has no such property."""
    node: Mapping[str, Any] = doc
    for part in path.split("."):
        is_list = part.endswith("[]")
        name = part[:-2] if is_list else part
        props = resolve(doc, node).get("properties") or {}
        if name not in props:
            return None
        node = resolve(doc, props[name])
        if is_list:
            node = resolve(doc, node.get("items") or {})
    return node


def pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def _coerce(value: Any, types: list[str]) -> Any:
    """CloudFormation coerces scalars between string and number forms; so does the Pulumi provider."""
    if isinstance(value, bool):
        return value if "boolean" in types else ("true" if value else "false") if "string" in types else value
    if isinstance(value, int | float) and "string" in types and not ({"integer", "number"} & set(types)):
        return str(value)
    if isinstance(value, str) and ({"integer", "number"} & set(types)) and "string" not in types:
        try:
            return int(value) if "integer" in types else float(value)
        except ValueError:
            return value
    return value


@cache
def _compiled(pattern: str) -> Any:
    """Python's `re` first; the `regex` module (a cfn-lint dependency) for ECMAScript-only syntax such
    as \\p{...}; a pattern neither can compile is not checked."""
    try:
        return re.compile(pattern)
    except re.error:
        pass
    try:
        import regex

        return regex.compile(pattern)
    except Exception:
        return None


def validate(
    doc: Mapping[str, Any],
    node: Mapping[str, Any],
    value: Any,
    path: str = "",
    key_map: Mapping[str, str] | None = None,
) -> Iterator[Problem]:
    """Problems of `value` against schema `node`. Objects are walked with camelCase -> PascalCase keys
    (Pulumi's nested inputs), with `key_map` for the keys that differ more (`ttl` -> `TTL`); keys the
    schema does not know are not judged (the mapping table may not cover them)."""
    node = resolve(doc, node)
    if "oneOf" in node or "anyOf" in node:
        return  # alternatives: only the shared keywords below the combinator would be sound
    raw_types = node.get("type")
    types = [raw_types] if isinstance(raw_types, str) else list(raw_types or [])
    if types:
        value = _coerce(value, types)
        if not any(isinstance(value, _JSON_TYPES.get(t, ())) for t in types) or (
            isinstance(value, bool) and "boolean" not in types
        ):
            yield Problem(path, "type", f"is {type(value).__name__}; the schema wants {' or '.join(types)}")
            return
    if "enum" in node and value not in node["enum"]:
        allowed = ", ".join(map(str, node["enum"][:30]))
        yield Problem(path, "enum", f"is not one of: {allowed}")
    if isinstance(value, str):
        if "minLength" in node and len(value) < node["minLength"]:
            yield Problem(path, "minLength", f"is {len(value)} characters; at least {node['minLength']}")
        if "maxLength" in node and len(value) > node["maxLength"]:
            yield Problem(path, "maxLength", f"is {len(value)} characters; at most {node['maxLength']}")
        if "pattern" in node:
            compiled = _compiled(str(node["pattern"]))
            if compiled is not None and not compiled.search(value):
                yield Problem(path, "pattern", f"does not match {node['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            yield Problem(path, "minimum", f"is below the minimum {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            yield Problem(path, "maximum", f"is above the maximum {node['maximum']}")
    if isinstance(value, list | tuple):
        if "minItems" in node and len(value) < node["minItems"]:
            yield Problem(path, "minItems", f"has {len(value)} items; at least {node['minItems']}")
        if "maxItems" in node and len(value) > node["maxItems"]:
            yield Problem(path, "maxItems", f"has {len(value)} items; at most {node['maxItems']}")
        if node.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
            yield Problem(path, "uniqueItems", "has duplicate items")
        items = node.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                yield from validate(doc, items, item, f"{path}[{i}]", key_map)
    if isinstance(value, dict):
        props = node.get("properties") or {}
        present = set()
        for key, item in value.items():
            cfn_key = (key_map or {}).get(key, pascal(key))
            present.add(cfn_key)
            if cfn_key in props and not _is_opaque(item):
                yield from validate(doc, props[cfn_key], item, f"{path}.{cfn_key}" if path else cfn_key, key_map)
        for required in node.get("required") or []:
            if required not in present and props:
                yield Problem(path, "required", f"has no {required} (required)")


def _is_opaque(value: Any) -> bool:
    """Secrets and engine unknowns are not checked."""
    from offline.preflight.values import is_opaque

    return is_opaque(value)
