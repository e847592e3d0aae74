"""The SDK's floor for one stack: the plan's resources registered flat, under the same mocks, with the same classes.

    .venv/bin/python benchmarks/floor.py --plan PLAN.json [--out FIGURES.json]

`PLAN.json` is a stack's `python -m offline preview --export` file. This process imports the same
`pulumi_aws`/`pulumi_awsx`/`pulumi_tls` classes the program used (each type token is looked up in the
providers' own resource-module tables, with `components.sdk_imports` installed as in the program, so the
same modules load), then, under the same runtime (`offline.runtime.run_function`: the recording MockMonitor, `AwsMocks`, the same
garbage-collector settings), constructs every resource of the plan with its class and its recorded
inputs, and every component as a plain `ComponentResource` of its type. Flat: no parents, no explicit
providers, no dependencies, no program logic (no config, no specs, no `apply`). What remains is what the
SDK costs to import and register these resources: the floor the real program is compared with
(`benchmarks/offline_preview.py` prints the ratio per stack).

With `--out` it writes its figures as JSON: CPU and wall time of the whole process so far (interpreter
start, imports and registration; the parent adds exit, which takes the CLI's way out, `exit_now`), the
registration alone, and resources registered.
Not a test: it reports figures.
"""

from __future__ import annotations

import time

_STARTED_WALL, _STARTED_CPU = time.perf_counter(), time.process_time()

import argparse  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def class_table(packages: set[str]) -> dict[str, tuple[str, str]]:
    """Type token -> (module, class name), from the providers' own registrations (`_utilities.register`):
    importing a provider's package (`aws` -> `pulumi_aws`, `docker-build` -> `pulumi_docker_build`)
    registers its resource modules, without loading them."""
    from pulumi.runtime import rpc

    for package in sorted(packages - {"pulumi"}):
        importlib.import_module(f"pulumi_{package.replace('-', '_')}")

    table: dict[str, tuple[str, str]] = {}
    for modules in rpc._RESOURCE_MODULES.values():
        for module in modules:
            info = getattr(module, "mod_info", None)
            if info:
                for token, class_name in info["classes"].items():
                    table[token] = (info["fqn"], class_name)
    return table


def resolve_class(token: str, table: dict[str, tuple[str, str]]) -> Any:
    if token.startswith("pulumi:providers:"):
        return importlib.import_module(f"pulumi_{token.rsplit(':', 1)[-1]}").Provider
    module, class_name = table[token]
    return getattr(importlib.import_module(module), class_name)


def python_names(cls: Any) -> dict[str, str]:
    """Wire (camelCase) input name -> the class's keyword argument: the generated `_internal_init`'s
    parameters in camelCase, corrected by the `<Class>Args` input type's own name table where it has one."""
    from pulumi import _types

    parameters = [p for p in inspect.signature(cls._internal_init).parameters if p not in _NOT_INPUTS]
    mapping = {_camel(p): p for p in parameters}
    args_type = getattr(sys.modules[cls.__module__], f"{cls.__name__}Args", None)
    if args_type is not None and _types.is_input_type(args_type):
        mapping.update({wire: py for py, wire in _types.input_type_py_to_pulumi_names(args_type).items()})
    return mapping


_NOT_INPUTS = frozenset({"__self__", "self", "resource_name", "opts", "__props__"})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def sdk_value(value: Any) -> Any:
    """A recorded wire value back into what a program passes: secrets become secret Outputs."""
    import pulumi

    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return pulumi.Output.secret(sdk_value(value.get("value", value.get("ciphertext"))))
        return {k: sdk_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sdk_value(v) for v in value]
    return value


def register_flat(plan: Any, table: dict[str, tuple[str, str]], unmapped: list[str]) -> int:
    """Construct every resource of `plan` without parents; returns how many were constructed.

    Inputs the class has no keyword for are listed in `unmapped` (reported, so a gap is visible)."""
    import pulumi

    count = 0
    names: dict[Any, dict[str, str]] = {}
    for resource in plan.resources:
        if resource.type == "pulumi:pulumi:Stack":
            continue  # the runtime registers the stack itself
        if not resource.custom and not resource.remote and resource.type not in table:
            pulumi.ComponentResource(resource.type, resource.name)
            count += 1
            continue
        cls = resolve_class(resource.type, table)
        if cls not in names:
            names[cls] = python_names(cls)
        mapping = names[cls]
        kwargs = {mapping[k]: sdk_value(v) for k, v in resource.inputs.items() if k in mapping}
        unmapped.extend(f"{resource.type}.{k}" for k in resource.inputs if k not in mapping)
        cls(resource.name, **kwargs)
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=Path, required=True, help="a `python -m offline preview --export` file")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    # The program loads only the pulumi_aws modules it uses (components/sdk_imports.py): so does the floor.
    from components import sdk_imports

    sdk_imports.install()
    from offline.export import load_plan
    from offline.runtime import read_stack_files, run_function

    plan = load_plan(args.plan)
    files = read_stack_files(ROOT, plan.stack)
    table = class_table({r.type.split(":", 1)[0] for r in plan.resources if r.custom or r.remote})
    registered: list[int] = []
    unmapped: list[str] = []
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    result = run_function(
        lambda: registered.append(register_flat(plan, table, unmapped)),
        stack=plan.stack,
        project=plan.project,
        config=files.config,
        secret_keys=files.secret_keys,
        region=files.region,
    )
    figures = {
        "stack": plan.stack,
        "resources": len(result.plan.resources),
        "constructed": registered[0],
        "unmapped_inputs": sorted(set(unmapped)),
        "register_wall_s": time.perf_counter() - started_wall,
        "register_cpu_s": time.process_time() - started_cpu,
        "process_wall_s": time.perf_counter() - _STARTED_WALL,
        "process_cpu_s": time.process_time() - _STARTED_CPU,
    }
    if args.out:
        args.out.write_text(json.dumps(figures))
    else:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
    from offline.__main__ import exit_now

    exit_now(0)  # the same way out as the CLI, so the two processes compare like for like
