"""Backward compatibility of event contracts (`services/notification/schemas/<DetailType>/v<N>.json`).

A new version of an event must not break consumers written against the previous one:
* a property the previous version REQUIRED must still exist and still be required (a removed or
  renamed required field breaks every consumer that reads it);
* no property's type may narrow, and no constraint may tighten (a narrowed type: consumers that
  validate with the new schema reject events the old producers still emit during the rollout);
* `version` itself (the contract's own `const`) is expected to change and is not compared.
Adding optional properties, widening types and loosening constraints are compatible.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from interfaces.http import narrowed

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")
VERSION_FIELD = "version"


def _resolver(document: Mapping[str, Any]) -> Any:
    def resolve(node: Any) -> Any:
        depth = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and depth < 32:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $refs are compared, got {ref!r}")
            target: Any = document
            for part in ref[2:].split("/"):
                target = target[part]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            node, depth = ({**target, **extra} if extra else target), depth + 1
        return node

    return resolve


def incompatibilities(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why `new` (the next version) is not backward compatible with `old` (empty: compatible)."""
    return list(_compare(_resolver(old), old, _resolver(new), new, ""))


def _compare(old_r: Any, before: Any, new_r: Any, after: Any, where: str) -> Iterator[str]:
    before, after = old_r(before), new_r(after)
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return
    old_props, new_props = before.get("properties", {}), after.get("properties", {})
    old_required, new_required = set(before.get("required", [])), set(after.get("required", []))
    label = f"{where}." if where else ""
    for name in sorted(old_required):
        if name not in new_props:
            twins = [
                n
                for n in sorted(set(new_props) - set(old_props))
                if json.dumps(new_r(new_props[n]), sort_keys=True)
                == json.dumps(old_r(old_props.get(name, {})), sort_keys=True)
            ]
            hint = f" (renamed to {twins[0]!r}?)" if twins else ""
            yield f"required field {label}{name} was removed{hint}"
        elif name not in new_required:
            yield f"required field {label}{name} is no longer required"
    for name in sorted(set(old_props) & set(new_props)):
        if not where and name == VERSION_FIELD:
            continue
        child = f"{label}{name}"
        scalar_before = {
            k: v for k, v in old_r(old_props[name]).items() if k not in ("properties", "items", "required")
        }
        scalar_after = {k: v for k, v in new_r(new_props[name]).items() if k not in ("properties", "items", "required")}
        if "const" in scalar_after and scalar_after.get("const") != scalar_before.get("const"):
            yield f"{child}: narrowed to the constant {scalar_after['const']!r}"
        yield from narrowed(old_r, scalar_before, new_r, scalar_after, child)
        yield from _compare(old_r, old_props[name], new_r, new_props[name], child)
        old_items, new_items = old_r(old_props[name]).get("items"), new_r(new_props[name]).get("items")
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            items_where = f"{child}[]"
            yield from narrowed(
                old_r,
                {k: v for k, v in old_r(old_items).items() if k not in ("properties", "required")},
                new_r,
                {k: v for k, v in new_r(new_items).items() if k not in ("properties", "required")},
                items_where,
            )
            yield from _compare(old_r, old_items, new_r, new_items, items_where)


def versions(schema_dir: Path) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """detail-type -> [(version, schema)] sorted by version."""
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for type_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
        for path in type_dir.iterdir():
            match = _VERSION_FILE.match(path.name)
            if match:
                found.setdefault(type_dir.name, []).append((int(match.group(1)), json.loads(path.read_text("utf-8"))))
    return {k: sorted(v, key=lambda item: item[0]) for k, v in found.items()}


def check_schema_dir(schema_dir: Path) -> list[str]:
    """Every consecutive pair of versions of every event type, compared."""
    problems = []
    for detail_type, history in versions(schema_dir).items():
        for (v_old, old), (v_new, new) in itertools.pairwise(history):
            problems += [f"{detail_type} v{v_old} -> v{v_new}: {p}" for p in incompatibilities(old, new)]
    return problems
