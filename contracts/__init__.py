"""Versioned event contracts of the platform's domain events, and the EventBridge pattern builder.

A package of its own, at the bottom of the import graph (standard library only): the notification
Lambda imports it at runtime (it ships inside every Lambda package, next to the handler), and the
components import it to build rule patterns and the schema registry (`contracts.draft4` converts a
contract for the registry). Nothing here imports the rest of the repository.

Layout: ``schemas/<DetailType>/v<N>.json``, one JSON Schema (draft 2020-12) per event type and
version, describing the EventBridge ``detail``. Every ``detail`` carries its own contract version
(``version``, an integer), a ``correlationId`` and an ``occurredAt`` timestamp. A compatible change
(a new optional field) still gets a new version, so consumers always know exactly which shape they
read; incompatible changes get a new version too and producers emit both until consumers move.

Why a built-in validator instead of ``jsonschema``: this directory is deployed as the Lambda code
as-is (no build step, no layer), and the Lambda Python runtime ships boto3 but not ``jsonschema``.
Importing it "if available" would make the function behave differently in tests and in AWS, or
fail every invocation at import if the packaging ever forgets it. So validation uses the small,
dependency-free validator below, which implements exactly the subset of draft 2020-12 the schemas
use and *refuses to load a schema that uses any other keyword* (a silently ignored ``oneOf`` would
be worse than an error). The test suite checks every schema with ``jsonschema``'s
``Draft202012Validator.check_schema`` and cross-checks this validator's verdicts against
``jsonschema`` on valid and invalid events, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schemas"
"""``schemas/<DetailType>/v<N>.json``; shipped inside the Lambda package next to this module."""

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

EVENT_SOURCE_PREFIX: Final = "microservices."

PUBLISHERS: Final[Mapping[str, str]] = {
    "OrderPlaced": "microservices.order",
    "OrderCancelled": "microservices.order",
    "PaymentCaptured": "microservices.payment",
    "UserRegistered": "microservices.user",
    "InventoryLow": "microservices.inventory",
}
"""The only EventBridge ``source`` allowed to publish each detail-type (``microservices.<service>``)."""


class ContractError(ValueError):
    """An event does not satisfy its contract (unknown type or version, or a detail that does not match)."""

    def __init__(
        self, message: str, *, detail_type: str | None = None, version: int | None = None, errors: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.detail_type = detail_type
        self.version = version
        self.errors = tuple(errors)


class SchemaDefinitionError(RuntimeError):
    """A schema file is broken or uses a JSON Schema feature the built-in validator does not implement."""


_SCHEMA_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")


def _discover_contracts() -> tuple[tuple[str, int], ...]:
    found = [
        (type_dir.name, int(match.group(1)))
        for type_dir in SCHEMA_DIR.iterdir()
        if type_dir.is_dir()
        for schema_file in type_dir.iterdir()
        if (match := _SCHEMA_FILE.match(schema_file.name))
    ]
    return tuple(sorted(found))


KNOWN_CONTRACTS: Final[tuple[tuple[str, int], ...]] = _discover_contracts()
"""Every (detail_type, version) with a schema file, sorted."""


def known_versions(detail_type: str) -> tuple[int, ...]:
    return tuple(v for t, v in KNOWN_CONTRACTS if t == detail_type)


def parse_version(version: object) -> int:
    """Accept ``2``, ``"2"`` or ``"v2"``; anything else is a ContractError."""
    if isinstance(version, float) and version.is_integer():
        version = int(version)  # JSON has one number type: 2.0 is 2
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    if isinstance(version, str) and (match := re.fullmatch(r"[vV]?([1-9][0-9]{0,5})", version.strip())):
        return int(match.group(1))
    raise ContractError(f"event version {version!r} is not a positive integer (expected e.g. 1, '1' or 'v1')")


def validate_event(detail_type: str, version: str | int, detail: Any) -> None:
    """Check ``detail`` against the contract ``detail_type`` v``version``; raise ContractError naming every problem."""
    if detail_type not in {t for t, _ in KNOWN_CONTRACTS}:
        known = ", ".join(sorted({t for t, _ in KNOWN_CONTRACTS}))
        raise ContractError(f"unknown event type {detail_type!r}; known event types: {known}", detail_type=detail_type)
    number = parse_version(version)
    versions = known_versions(detail_type)
    if number not in versions:
        known = ", ".join(f"v{v}" for v in versions)
        raise ContractError(
            f"no contract for {detail_type} v{number}; known versions of {detail_type}: {known}",
            detail_type=detail_type,
            version=number,
        )
    errors = _validate(load_schema(detail_type, number), detail)
    if errors:
        raise ContractError(
            f"{detail_type} v{number} contract violated: " + "; ".join(errors),
            detail_type=detail_type,
            version=number,
            errors=errors,
        )


@dataclass(frozen=True)
class DomainEvent:
    """An EventBridge event whose envelope and detail satisfied their contract."""

    event_id: str
    source: str
    detail_type: str
    version: int
    time: str
    detail: Mapping[str, Any]

    @property
    def correlation_id(self) -> str:
        return str(self.detail["correlationId"])


def envelope_correlation_id(envelope: object) -> str | None:
    """Best-effort correlation id of a possibly invalid envelope: ``detail.correlationId``, else the event id."""
    if not isinstance(envelope, Mapping):
        return None
    detail = envelope.get("detail")
    if isinstance(detail, Mapping) and isinstance(detail.get("correlationId"), str) and detail["correlationId"]:
        return str(detail["correlationId"])
    event_id = envelope.get("id")
    return event_id if isinstance(event_id, str) and event_id else None


def parse_envelope(envelope: object) -> DomainEvent:
    """Validate a full EventBridge event (``id``, ``source``, ``detail-type``, ``detail``) and its detail contract."""
    if not isinstance(envelope, Mapping):
        raise ContractError(f"an EventBridge event must be a JSON object, got {type(envelope).__name__}")
    missing = [key for key in ("id", "source", "detail-type", "detail") if key not in envelope]
    if missing:
        raise ContractError(f"not an EventBridge event: missing {', '.join(missing)}")
    detail_type, source, detail = envelope["detail-type"], envelope["source"], envelope["detail"]
    if not isinstance(detail_type, str) or not isinstance(source, str):
        raise ContractError("not an EventBridge event: 'detail-type' and 'source' must be strings")
    if not isinstance(detail, Mapping):
        raise ContractError(
            f"{detail_type}: 'detail' must be a JSON object, got {type(detail).__name__}", detail_type=detail_type
        )
    if "version" not in detail:
        raise ContractError(
            f"{detail_type}: detail.version is missing; every event carries the version of its contract",
            detail_type=detail_type,
        )
    validate_event(detail_type, detail["version"], detail)
    version = parse_version(detail["version"])
    expected_source = PUBLISHERS.get(detail_type)
    if source != expected_source:
        raise ContractError(
            f"{detail_type} must be published by {expected_source!r}, got source {source!r}",
            detail_type=detail_type,
            version=version,
        )
    return DomainEvent(
        event_id=str(envelope["id"]),
        source=source,
        detail_type=detail_type,
        version=version,
        time=str(envelope.get("time", "")),
        detail=detail,
    )


def event_pattern(sources: list[str], detail_types: list[str]) -> dict[str, list[str]]:
    """The EventBridge event pattern matching exactly these sources and detail-types.

    Order is kept and duplicates dropped, so the same inputs always give the same pattern (no
    spurious diffs). Empty lists are rejected: EventBridge rejects an empty array in a pattern, and
    leaving a key out would match *every* source or type, which is never what a subscription means.
    """
    for key, values in (("sources", sources), ("detail_types", detail_types)):
        if not values:
            raise ValueError(f"event_pattern: {key} must list at least one value")
        bad = [v for v in values if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ValueError(f"event_pattern: {key} must be non-empty strings, got {bad!r}")
    return {"source": list(dict.fromkeys(sources)), "detail-type": list(dict.fromkeys(detail_types))}


# --------------------------------------------------------------------------------------------------
# The built-in validator: the draft 2020-12 subset below, nothing else.

ANNOTATION_KEYWORDS: Final = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default"}
)
ASSERTION_KEYWORDS: Final = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
SUPPORTED_KEYWORDS: Final = ANNOTATION_KEYWORDS | ASSERTION_KEYWORDS
"""Every JSON Schema keyword a contract may use: the validator below and the draft-04 converter
(`contracts.draft4`, for the EventBridge schema registry) both handle exactly these."""
_FORMATS = frozenset({"date-time"})
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


@cache
def load_schema(detail_type: str, version: int) -> Mapping[str, Any]:
    """Read and check one schema file (cached; a Lambda container validates many events with it)."""
    path = SCHEMA_DIR / detail_type / f"v{version}.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaDefinitionError(f"cannot read contract {path}: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("$schema") != SCHEMA_DIALECT:
        raise SchemaDefinitionError(f'{path}: must be an object with "$schema": {SCHEMA_DIALECT!r}')
    _check_supported(schema, schema, str(path), "#")
    return schema


def _check_supported(node: Any, root: Mapping[str, Any], path: str, where: str) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, dict):
        raise SchemaDefinitionError(f"{path} {where}: a schema must be an object or a boolean")
    unknown = sorted(set(node) - SUPPORTED_KEYWORDS)
    if unknown:
        raise SchemaDefinitionError(
            f"{path} {where}: keyword(s) {', '.join(unknown)} not supported by the built-in validator; "
            f"supported: {', '.join(sorted(SUPPORTED_KEYWORDS))}"
        )
    if "format" in node and node["format"] not in _FORMATS:
        raise SchemaDefinitionError(f"{path} {where}: format {node['format']!r} not supported; supported: date-time")
    types = node.get("type", [])
    for t in [types] if isinstance(types, str) else types:
        if t not in _TYPES:
            raise SchemaDefinitionError(f"{path} {where}: unknown type {t!r}")
    if "pattern" in node:
        try:
            re.compile(node["pattern"])
        except re.error as exc:
            raise SchemaDefinitionError(f"{path} {where}: bad pattern: {exc}") from exc
    if "$ref" in node:
        _resolve(root, node["$ref"], path)
    for name, sub in node.get("$defs", {}).items():
        _check_supported(sub, root, path, f"{where}/$defs/{name}")
    for name, sub in node.get("properties", {}).items():
        _check_supported(sub, root, path, f"{where}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if key in node:
            _check_supported(node[key], root, path, f"{where}/{key}")


def _resolve(root: Mapping[str, Any], ref: str, path: str = "schema") -> Any:
    prefix = "#/$defs/"
    if not isinstance(ref, str) or not ref.startswith(prefix) or ref[len(prefix) :] not in root.get("$defs", {}):
        raise SchemaDefinitionError(f"{path}: $ref {ref!r} must point at an entry of this file's $defs")
    return root["$defs"][ref[len(prefix) :]]


def _validate(schema: Mapping[str, Any], instance: Any) -> list[str]:
    errors: list[str] = []
    _check(schema, instance, schema, "detail", errors)
    return errors


def _is_type(value: Any, json_type: str) -> bool:
    if json_type == "null":
        return value is None
    if json_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if json_type == "integer":
        # As in JSON Schema, 3.0 is an integer; booleans are not numbers.
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if json_type == "number":
        return isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value))
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1 (Python says otherwise)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    a_number, b_number = _is_type(a, "number"), _is_type(b, "number")
    if a_number or b_number:
        return a_number and b_number and a == b
    return type(a) is type(b) and a == b


_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", flags=re.ASCII
)


def is_date_time(value: str) -> bool:
    """RFC 3339 ``date-time`` (what JSON Schema's ``format: date-time`` means): offset required."""
    match = _DATE_TIME.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # Leap second (:60) is valid RFC 3339; datetime cannot hold it, so check the rest with :59.
    second = "59" if second == "60" else second
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second}{(fraction or '')[:7]}{offset}")
    except ValueError:
        return False
    return True


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _check(schema: Any, value: Any, root: Mapping[str, Any], where: str, errors: list[str]) -> None:
    if schema is True:
        return
    if schema is False:
        errors.append(f"{where}: not allowed")
        return
    if "$ref" in schema:
        _check(_resolve(root, schema["$ref"]), value, root, where, errors)
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        if not any(_is_type(value, t) for t in types):
            errors.append(f"{where}: expected {' or '.join(types)}, got {_describe(value)}")
            return
    if "const" in schema and not _json_equal(value, schema["const"]):
        errors.append(f"{where}: must be {_describe(schema['const'])}, got {_describe(value)}")
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        allowed = ", ".join(_describe(option) for option in schema["enum"])
        errors.append(f"{where}: {_describe(value)} is not one of {allowed}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {_describe(value)} does not match {schema['pattern']!r}")
        if schema.get("format") == "date-time" and not is_date_time(value):
            errors.append(f"{where}: {_describe(value)} is not an RFC 3339 date-time (e.g. 2025-01-31T09:30:00Z)")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is less than the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} is greater than the maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: {value} must be greater than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            errors.append(f"{where}: {value} must be less than {schema['exclusiveMaximum']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                _check(schema["items"], item, root, f"{where}[{index}]", errors)
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}.{name}: required property is missing")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                _check(properties[name], item, root, f"{where}.{name}", errors)
            elif "additionalProperties" in schema:
                if schema["additionalProperties"] is False:
                    errors.append(f"{where}.{name}: unexpected property (not in this contract version)")
                else:
                    _check(schema["additionalProperties"], item, root, f"{where}.{name}", errors)
