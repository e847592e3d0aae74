"""`benchmarks/floor.py`: the SDK floor the program is compared with must register the same resources,
flat, with every recorded input passed to the same class. Timing is the benchmark's job, not this."""

from __future__ import annotations

from pathlib import Path

from benchmarks import floor
from offline.export import load_plan, stack_export, write_json
from offline.runtime import read_stack_files, run_function
from tests.conftest import ROOT, preview


def test_floor_registers_every_resource_of_the_plan_flat_with_its_inputs(tmp_path: Path) -> None:
    program = preview("prod").plan
    write_json(tmp_path / "prod.json", stack_export(program))
    plan = load_plan(tmp_path / "prod.json")
    table = floor.class_table({r.type.split(":", 1)[0] for r in plan.resources if r.custom or r.remote})
    unmapped: list[str] = []
    files = read_stack_files(ROOT, "prod")
    flat = run_function(
        lambda: floor.register_flat(plan, table, unmapped),
        stack="prod",
        config=files.config,
        secret_keys=files.secret_keys,
        region=files.region,
    ).plan
    assert unmapped == [], "every recorded input reaches the class's own keyword"
    assert sorted((r.type, r.name) for r in flat.resources) == sorted((r.type, r.name) for r in program.resources)
    [stack] = [r for r in flat.resources if r.type == "pulumi:pulumi:Stack"]
    assert {r.parent for r in flat.resources if r is not stack} == {stack.urn}, "flat: the stack is every parent"
    assert not any(r.dependencies for r in flat.resources)
    inputs = {(r.type, r.name): r.inputs for r in program.resources if r.custom}
    for resource in flat.resources:
        if resource.custom:
            assert set(resource.inputs) == set(inputs[(resource.type, resource.name)]), resource.urn
