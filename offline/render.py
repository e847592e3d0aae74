"""Print a recorded plan the way `pulumi preview` does: a resource tree, outputs and a summary."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from offline.plan import Plan, PlannedResource


def _children(plan: Plan) -> dict[str, list[PlannedResource]]:
    tree: dict[str, list[PlannedResource]] = defaultdict(list)
    for r in plan.resources:
        tree[r.parent].append(r)
    return tree


def render_tree(plan: Plan, *, show_ids: bool = False) -> str:
    tree = _children(plan)
    rows: list[tuple[str, str, str]] = []

    def walk(resource: PlannedResource, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        marks = " [protect]" if resource.protect else ""
        rows.append((f"{prefix}{branch}{resource.type}", resource.name + marks, "create"))
        # Registration order varies run to run (resources register concurrently); sort so two previews
        # of the same program print the same text: components first, then by name.
        kids = sorted(tree.get(resource.urn, []), key=lambda r: (r.custom, r.name, r.type))
        extension = "" if depth == 0 else ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, prefix + extension, i == len(kids) - 1, depth + 1)

    for root in tree.get("", []):
        walk(root, "", True, 0)
    width_type = max((len(r[0]) for r in rows), default=4) + 2
    width_name = max((len(r[1]) for r in rows), default=4) + 2
    lines = [f"     {'Type'.ljust(width_type)}{'Name'.ljust(width_name)}Plan"]
    lines += [f" +   {t.ljust(width_type)}{n.ljust(width_name)}{op}" for t, n, op in rows]
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, str) else str(value)


def render_preview(plan: Plan) -> str:
    lines = [f"Previewing update ({plan.stack}) [offline: mock runtime, nothing is sent to AWS]:", ""]
    lines.append(render_tree(plan))
    if plan.outputs:
        lines += ["", "Outputs:"]
        width = max(len(k) for k in plan.outputs) + 1
        for key in sorted(plan.outputs):
            lines.append(f"    {(key + ':').ljust(width)} {_value(plan.outputs[key])}")
    lines += ["", "Resources:", f"    + {len(plan.resources)} to create"]
    custom = sum(1 for r in plan.resources if r.custom)
    lines.append(f"    ({custom} AWS/TLS resources, {len(plan.resources) - custom} components and the stack)")
    return "\n".join(lines)
