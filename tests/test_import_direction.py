"""Imports flow one way (ARCHITECTURE.md, "Imports"):

    model (errors) <- config / spec models <- contracts <- components <- composition (platform.py, __main__.py)
                                          ^- services (specs, catalog)   ^- the Lambda code (contracts only)

Checked on the source (every `import` statement, including those inside functions), so a backwards
import fails here with the file and line instead of as a cycle at some later import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FIRST_PARTY = ("model", "contracts", "components", "services", "offline", "policies")


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
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


def violations(files: list[Path], allowed: set[str], *, allowed_modules: frozenset[str] = frozenset()) -> list[str]:
    bad = []
    for path in files:
        for line, module in imports(path):
            if module.startswith("."):
                bad.append(f"{path.relative_to(ROOT)}:{line}: relative import {module!r}")
                continue
            top = first_party(module)
            if top is not None and top not in allowed and module not in allowed_modules:
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return bad


def py(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_model_imports_nothing_of_ours() -> None:
    assert violations(py("model"), {"model"}) == []


def test_contracts_import_only_the_standard_library_and_themselves() -> None:
    assert violations(py("contracts"), {"contracts"}) == []
    for path in py("contracts"):
        for line, module in imports(path):
            top = module.split(".")[0]
            assert top == "contracts" or top in sys.stdlib_module_names, f"{path}:{line}: {module}"


def test_the_config_and_spec_models_sit_at_the_bottom() -> None:
    models = [ROOT / "components" / "config.py", ROOT / "services" / "spec.py"]
    # components/aws_limits.py is data (dated AWS limits with their sources), itself importing nothing of ours.
    assert violations(models, {"model"}, allowed_modules=frozenset({"components.aws_limits"})) == []
    assert violations([ROOT / "components" / "aws_limits.py"], set()) == []


def test_the_lambda_code_imports_only_the_contracts() -> None:
    code = [p for p in py("services/notification") if p.name not in ("service.py", "__init__.py")]
    assert code
    assert violations(code, {"contracts"}) == []


def test_service_specs_and_the_catalog_never_import_components() -> None:
    assert violations(py("services"), {"model", "services", "contracts"}) == []


@pytest.mark.parametrize("path", [p for p in py("components") if p.name != "platform.py"], ids=lambda p: p.name)
def test_components_never_import_the_lambda_code_or_the_catalog(path: Path) -> None:
    """Components build from the spec MODEL and the contracts package; they never import a Lambda's
    own code (`services.notification...`) or the catalog (`services`), which sits above them.
    `components/platform.py` is the composition, the top layer: it may read the catalog."""
    assert violations([path], {"model", "contracts", "components"}, allowed_modules=frozenset({"services.spec"})) == []
