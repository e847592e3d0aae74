"""Imports flow one way (ARCHITECTURE.md, "Imports flow one way"), with no exception:

    model (errors, config, spec, aws_limits)   contracts (stdlib only)      <- the bottom: import nothing above
        ^- components (resources; model + contracts)
            ^- services (specs: model only; a Lambda's code: contracts only), composition (platform.py, __main__.py)

Checked on the source (every `import` statement, including those inside functions), so a backwards
import fails here with the file and line instead of as a cycle at some later import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, parse_python

FIRST_PARTY = ("model", "contracts", "components", "services", "offline", "policies")


def imports(path: Path) -> list[tuple[int, str]]:
    tree = parse_python(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def first_party(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in FIRST_PARTY else None


def violations(files: list[Path], allowed: set[str], *, root: Path = ROOT) -> list[str]:
    """`file:line: imports X` for every first-party import outside `allowed` (and every relative import)."""
    bad = []
    for path in files:
        where = path.relative_to(root).as_posix()
        for line, module in imports(path):
            if module.startswith("."):
                bad.append(f"{where}:{line}: relative import {module!r}")
                continue
            top = first_party(module)
            if top is not None and top not in allowed:
                bad.append(f"{where}:{line}: imports {module}")
    return bad


def py(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


MODEL_THIRD_PARTY = {"pydantic", "pulumi"}
"""What the models may use besides the standard library: pydantic (the models) and pulumi (`ConfigError`
is a `pulumi.RunError`, and `load_stack_config` reads the stack's config)."""


def test_the_models_import_nothing_above_them() -> None:
    """The config models, the spec models, the AWS limits they check against and ConfigError: pure data
    at the bottom, so components, services, offline tools and tests all read the same definitions."""
    files = py("model")
    assert {p.name for p in files} >= {"config.py", "spec.py", "aws_limits.py", "errors.py"}
    assert violations(files, {"model"}) == []
    for path in files:
        for line, module in imports(path):
            top = module.split(".")[0]
            allowed = top == "model" or top in sys.stdlib_module_names or top in MODEL_THIRD_PARTY
            assert allowed, f"{path.relative_to(ROOT)}:{line}: imports {module}"


def test_a_backwards_import_in_a_model_is_reported(tmp_path: Path) -> None:
    """The checker itself: a model module reaching up (even inside a function) is named with its line."""
    bad = tmp_path / "model" / "leaky.py"
    bad.parent.mkdir()
    bad.write_text(
        "from model.errors import ConfigError\n"
        "from components.context import PlatformContext\n"
        "def f():\n"
        "    import services.order\n"
    )
    assert violations([bad], {"model"}, root=tmp_path) == [
        "model/leaky.py:2: imports components.context",
        "model/leaky.py:4: imports services.order",
    ]


def test_contracts_import_only_the_standard_library_and_themselves() -> None:
    assert violations(py("contracts"), {"contracts"}) == []
    for path in py("contracts"):
        for line, module in imports(path):
            top = module.split(".")[0]
            assert top == "contracts" or top in sys.stdlib_module_names, f"{path}:{line}: {module}"


def test_the_lambda_code_imports_only_the_contracts() -> None:
    code = [p for p in py("services/notification") if p.name not in ("service.py", "__init__.py")]
    assert code
    assert violations(code, {"contracts"}) == []


def test_service_specs_and_the_catalog_import_only_the_models() -> None:
    """A spec file imports `model.spec`; the catalogue (`services/__init__.py`) the models and itself."""
    assert violations(py("services"), {"model", "services", "contracts"}) == []
    specs = [p for p in py("services") if p.parent.name == "services" and p.name != "__init__.py"]
    specs += sorted((ROOT / "services").glob("*/service.py"))
    assert len(specs) >= 5
    assert violations(specs, {"model"}) == []


@pytest.mark.parametrize("path", [p for p in py("components") if p.name != "platform.py"], ids=lambda p: p.name)
def test_components_never_import_the_services(path: Path) -> None:
    """Components build from the models (`model.config`, `model.spec`) and the contracts package; they never
    import anything from `services/` (the catalog, a spec file, a Lambda's own code), which sits above them.
    `components/platform.py` is the composition, the top layer: it may read the catalog."""
    assert violations([path], {"model", "contracts", "components"}) == []
