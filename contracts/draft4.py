"""JSON Schema draft 2020-12 -> draft-04, for the EventBridge schema registry.

The registry accepts `JSONSchemaDraft4` (or `OpenApi3`) only, while the contracts are draft 2020-12
(what the handler's validator and `jsonschema` check). This converter lives next to the contracts it
converts and handles exactly the keywords they may use (`contracts.SUPPORTED_KEYWORDS`); standard
library only, like the rest of the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from contracts import SUPPORTED_KEYWORDS

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
DRAFT_04 = "http://json-schema.org/draft-04/schema#"

_DROPPED: Final = frozenset({"$comment", "examples"})
"""Annotations draft-04 does not know; dropping them changes no verdict."""
_TRANSLATED: Final = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "$ref",
        "const",
        "properties",
        "items",
        "additionalProperties",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "required",
    }
)
"""Keywords `_convert` rewrites for draft-04 (see `to_draft4`)."""
_SAME_IN_DRAFT4: Final = SUPPORTED_KEYWORDS - _DROPPED - _TRANSLATED
"""Every other supported keyword is copied as it is: derived from the one list (`contracts.SUPPORTED_KEYWORDS`),
so a keyword added there is converted too. A test checks each of these means the same in draft-04
(jsonschema's draft-04 meta-schema), so a keyword without that equivalent must get a rule above."""


def to_draft4(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a draft 2020-12 contract to JSON Schema draft-04, the newest dialect EventBridge's schema
    registry accepts (`JSONSchemaDraft4`; the other type is `OpenApi3`).

    The contracts only use keywords with a direct draft-04 equivalent: `$id` -> `id`, `$defs` ->
    `definitions` (and `$ref`s to them), `const: x` -> `enum: [x]`, numeric `exclusiveMinimum/Maximum`
    -> `minimum/maximum` + boolean flag, boolean schemas -> `{}` / `{"not": {}}`, and a `$ref` with
    sibling assertions -> `allOf` (draft-04 ignores siblings of `$ref`). Any other keyword raises, so
    a contract can never be registered with a silently weaker meaning. One known difference remains:
    draft-04 validators treat 1.0 as not an `integer` (2020-12 does); the registry documents the
    contract, the handler's validator enforces it.
    """
    if schema.get("$schema") != DRAFT_2020_12:
        raise ValueError(f"expected a draft 2020-12 schema ($schema {DRAFT_2020_12!r}), got {schema.get('$schema')!r}")
    converted = _convert(schema, "#")
    assert isinstance(converted, dict)
    return {"$schema": DRAFT_04, **converted}


def _convert(node: Any, where: str) -> Any:
    if node is True:
        return {}
    if node is False:
        return {"not": {}}
    if not isinstance(node, Mapping):
        raise ValueError(f"{where}: a schema must be an object or a boolean")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$schema" or key in _DROPPED:
            continue
        if key == "$id":
            out["id"] = value
        elif key == "$defs":
            out["definitions"] = {k: _convert(v, f"{where}/$defs/{k}") for k, v in value.items()}
        elif key == "$ref":
            if not isinstance(value, str) or not value.startswith("#/$defs/"):
                raise ValueError(f"{where}: only local $refs to #/$defs/... can be converted, got {value!r}")
            out["$ref"] = "#/definitions/" + value.removeprefix("#/$defs/")
        elif key == "const":
            if "enum" in node:
                raise ValueError(f"{where}: both const and enum; merge them into one")
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {k: _convert(v, f"{where}/properties/{k}") for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            if key == "items" and not isinstance(value, Mapping | bool):
                raise ValueError(f"{where}: tuple-form items has no draft-04 equivalent here")
            out[key] = value if key == "additionalProperties" and isinstance(value, bool) else _convert(value, where)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            other = node.get(bound)
            tighter = other is None or (value >= other if bound == "minimum" else value <= other)
            if tighter:
                out[bound] = value
                out[key] = True
        elif key == "required":
            if value:  # draft-04 requires at least one element
                out[key] = list(value)
        elif key in _SAME_IN_DRAFT4:
            if key in ("minimum", "maximum") and key in out:
                continue  # already set by a tighter exclusive bound
            out[key] = value
        else:
            raise ValueError(
                f"{where}: keyword {key!r} has no JSON Schema draft-04 equivalent in this converter "
                "(not a supported contract keyword: contracts.SUPPORTED_KEYWORDS)"
            )
    if "$ref" in out and any(k not in ("$ref", "title", "description", "default") for k in out):
        ref = {"$ref": out.pop("$ref")}
        annotations = {k: out.pop(k) for k in ("title", "description", "default") if k in out}
        return {**annotations, "allOf": [ref, out]}
    return out
