"""HTTP API contracts: loading, the callers' declared operations, and version compatibility.

A new version of a contract is compatible with the released one, for the operations callers use, when
every used operation still exists at the same method and path, and none is narrowed:
* no parameter becomes required, and no new required parameter appears;
* a parameter's or request property's schema accepts at least what it accepted (type, enum, bounds,
  length, pattern; see `narrowed`);
* the request body does not become required, and no request property becomes required;
* no success response code disappears, and no property a success response promised disappears or
  stops being required.
Operations nobody uses may change freely (that is the point of declaring `uses`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_spec_validator import validate

from interfaces import ROOT
from model.spec import ServiceSpec

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class ContractError(ValueError):
    """A contract is missing, invalid, or a caller/version check failed."""


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    spec: Mapping[str, Any]
    """The operation object (parameters merged with the path item's)."""


@dataclass(frozen=True)
class Contract:
    service: str
    version: str
    document: Mapping[str, Any]

    @property
    def operations(self) -> dict[str, Operation]:
        found: dict[str, Operation] = {}
        for path, item in (self.document.get("paths") or {}).items():
            shared = list(item.get("parameters", []))
            for method in HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, Mapping):
                    continue
                op_id = op.get("operationId")
                if not op_id:
                    raise ContractError(f"contract of {self.service!r}: {method.upper()} {path} has no operationId")
                if op_id in found:
                    raise ContractError(f"contract of {self.service!r}: operationId {op_id!r} is used twice")
                merged = {**op, "parameters": [*shared, *op.get("parameters", [])]}
                found[op_id] = Operation(op_id, method, path, merged)
        return found

    def resolve(self, node: Any) -> Any:
        """Follow a local `$ref` (`#/components/...`)."""
        seen = 0
        while isinstance(node, Mapping) and "$ref" in node and seen < 32:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise ContractError(f"contract of {self.service!r}: only local $refs are supported, got {ref!r}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node, seen = target, seen + 1
        return node


def load_document(path: Path) -> dict[str, Any]:
    """Read and validate one OpenAPI 3.1 document (openapi-spec-validator); one clear error if invalid."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ContractError(f"{path}: cannot read the contract: {error}") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise ContractError(f"{path}: not an OpenAPI 3.1 document (openapi: {document.get('openapi')!r})")
    try:
        validate(document)
    except Exception as error:  # openapi-spec-validator raises its own hierarchy
        raise ContractError(f"{path}: invalid OpenAPI 3.1 document: {getattr(error, 'message', error)}") from None
    version = str((document.get("info") or {}).get("version", ""))
    if not _SEMVER.match(version):
        raise ContractError(f"{path}: info.version = {version!r}: use semantic versioning (MAJOR.MINOR.PATCH)")
    return document


@cache
def _load(path: str) -> Contract:
    document = load_document(Path(path))
    return Contract(service=Path(path).stem, version=str(document["info"]["version"]), document=document)


def contract_of(spec: ServiceSpec, root: Path = ROOT) -> Contract:
    if spec.api_contract is None:
        raise ContractError(f"service spec '{spec.name}': api_contract is not set (every Fargate service needs one)")
    contract = _load(str(root / spec.api_contract))
    return Contract(spec.name, contract.version, contract.document)


def released_versions(service: str, root: Path = ROOT) -> list[tuple[str, Path]]:
    """`interfaces/openapi/released/<service>/<version>.yaml`, oldest first."""
    folder = root / "interfaces" / "openapi" / "released" / service
    found = [(p.stem, p) for p in folder.glob("*.yaml") if _SEMVER.match(p.stem)]
    return sorted(found, key=lambda v: tuple(int(x) for x in v[0].split(".")))


def used_operations(catalog: Iterable[ServiceSpec]) -> dict[str, dict[str, list[str]]]:
    """callee -> operationId -> callers that declare it in `uses`."""
    used: dict[str, dict[str, list[str]]] = {}
    for spec in catalog:
        for use in spec.uses:
            callee, operation = use.split(".", 1)
            used.setdefault(callee, {}).setdefault(operation, []).append(spec.name)
    return used


def check_callers(catalog: Sequence[ServiceSpec], contracts: Mapping[str, Contract]) -> list[str]:
    """Every declared use names an operation the callee's contract has (one message per miss)."""
    problems = []
    for callee, operations in sorted(used_operations(catalog).items()):
        contract = contracts.get(callee)
        if contract is None:
            problems.append(
                f"{', '.join(sorted({c for cs in operations.values() for c in cs}))} use {callee!r}, which has no contract"
            )
            continue
        offered = contract.operations
        for operation, callers in sorted(operations.items()):
            if operation not in offered:
                problems.append(
                    f"service {', '.join(sorted(callers))} uses {callee}.{operation}, but {callee}'s contract "
                    f"v{contract.version} has no operation {operation!r} (it has: {', '.join(sorted(offered))})"
                )
    return problems


# --- compatibility -------------------------------------------------------------------------------


def check_compatible(old: Contract, new: Contract, in_use: Iterable[str]) -> list[str]:
    """Why `new` breaks callers of `old` for the operations `in_use` (empty: compatible)."""
    problems = []
    old_ops, new_ops = old.operations, new.operations
    for op_id in sorted(set(in_use)):
        before = old_ops.get(op_id)
        if before is None:
            continue  # not in the released version: nothing to be compatible with
        after = new_ops.get(op_id)
        where = f"{new.service}.{op_id} (v{old.version} -> v{new.version})"
        if after is None:
            problems.append(f"{where}: the operation was removed")
            continue
        if (after.method, after.path) != (before.method, before.path):
            problems.append(
                f"{where}: moved from {before.method.upper()} {before.path} to {after.method.upper()} {after.path}"
            )
            continue
        problems += [f"{where}: {p}" for p in _operation_narrowed(old, before, new, after)]
    return problems


def _params(contract: Contract, op: Operation) -> dict[tuple[str, str], Mapping[str, Any]]:
    out = {}
    for raw in op.spec.get("parameters", []):
        param = contract.resolve(raw)
        out[
            (
                str(param.get("in")),
                str(param.get("name")).lower() if param.get("in") == "header" else str(param.get("name")),
            )
        ] = param
    return out


def _operation_narrowed(old: Contract, before: Operation, new: Contract, after: Operation) -> Iterator[str]:
    old_params, new_params = _params(old, before), _params(new, after)
    for key, param in sorted(new_params.items()):
        previous = old_params.get(key)
        label = f"{key[0]} parameter {key[1]!r}"
        if previous is None:
            if param.get("required"):
                yield f"new required {label}"
            continue
        if param.get("required") and not previous.get("required"):
            yield f"{label} became required"
        yield from (
            f"{label}: {p}"
            for p in narrowed(old.resolve, previous.get("schema", {}), new.resolve, param.get("schema", {}))
        )
    old_body = old.resolve(before.spec.get("requestBody") or {})
    new_body = new.resolve(after.spec.get("requestBody") or {})
    if new_body.get("required") and not old_body.get("required"):
        yield "the request body became required"
    for media, content in (new_body.get("content") or {}).items():
        previous = (old_body.get("content") or {}).get(media)
        if previous is not None:
            yield from (
                f"request body ({media}): {p}"
                for p in narrowed(old.resolve, previous.get("schema", {}), new.resolve, content.get("schema", {}))
            )
    old_responses, new_responses = before.spec.get("responses", {}), after.spec.get("responses", {})
    for code, response in sorted(old_responses.items()):
        if not str(code).startswith("2"):
            continue
        if code not in new_responses:
            yield f"success response {code} was removed"
            continue
        yield from (f"response {code}: {p}" for p in _response_shrunk(old, response, new, new_responses[code]))


def _response_shrunk(old: Contract, before: Any, new: Contract, after: Any) -> Iterator[str]:
    before, after = old.resolve(before), new.resolve(after)
    for media, content in (before.get("content") or {}).items():
        now = (after.get("content") or {}).get(media)
        if now is None:
            yield f"media type {media} is no longer returned"
            continue
        old_schema, new_schema = old.resolve(content.get("schema", {})), new.resolve(now.get("schema", {}))
        old_props, new_props = old_schema.get("properties", {}), new_schema.get("properties", {})
        for name in sorted(old_props):
            if name not in new_props:
                yield f"property {name!r} was removed"
        for name in sorted(set(old_schema.get("required", [])) - set(new_schema.get("required", []))):
            if name in new_props:
                yield f"property {name!r} is no longer always returned"


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    types = {value} if isinstance(value, str) else set(value)
    if "integer" in types or "number" in types:
        types |= {"integer"} if "number" in types else set()
    return types


Resolve = Callable[[Any], Any]


def narrowed(old: Resolve, before: Any, new: Resolve, after: Any, where: str = "") -> Iterator[str]:
    """What `after` rejects that `before` accepted (for inputs: a narrowing breaks existing callers).
    `old` / `new` resolve `$ref`s in their own documents (used for OpenAPI and JSON Schema alike)."""
    before, after = old(before or {}), new(after or {})
    if before is True or after is True:
        return
    prefix = f"{where}: " if where else ""
    old_types, new_types = _types(before), _types(after)
    if new_types is not None and (old_types is None or not old_types <= new_types):
        yield f"{prefix}type narrowed from {sorted(old_types) if old_types else 'any'} to {sorted(new_types)}"
    if "enum" in after and ("enum" not in before or not set(map(str, before["enum"])) <= set(map(str, after["enum"]))):
        yield f"{prefix}enum narrowed to {after['enum']}"
    for key, tighter in (
        ("maxLength", min),
        ("maximum", min),
        ("maxItems", min),
        ("minLength", max),
        ("minimum", max),
        ("minItems", max),
    ):
        if key in after and (key not in before or tighter(before[key], after[key]) == after[key] != before[key]):
            yield f"{prefix}{key} tightened to {after[key]}"
    if "pattern" in after and after.get("pattern") != before.get("pattern"):
        yield f"{prefix}pattern changed to {after['pattern']!r}"
    if after.get("additionalProperties") is False and before.get("additionalProperties", True) is not False:
        yield f"{prefix}additional properties are no longer accepted"
    new_required = set(after.get("required", [])) - set(before.get("required", []))
    for name in sorted(new_required):
        yield f"{prefix}property {name!r} became required"
    old_props, new_props = before.get("properties", {}), after.get("properties", {})
    for name in sorted(set(old_props) & set(new_props)):
        yield from narrowed(old, old_props[name], new, new_props[name], f"{where}.{name}" if where else name)
    if "items" in before and "items" in after:
        yield from narrowed(old, before["items"], new, after["items"], f"{where}[]" if where else "[]")
