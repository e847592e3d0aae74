"""components.sdk_imports: `aws.<service>.<Class>` loads only the modules used, and means what it meant.

The lazy packages must export exactly what the generated `__init__.py` would have exported (same
objects, same later-wins order), load a module only when one of its names is used, and fall back to
the SDK's own behaviour when a package does not have the generated shape.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from components import sdk_imports

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def preview_modules() -> list[str]:
    """The `pulumi_aws` modules loaded after the dev stack's offline preview, in a fresh interpreter."""
    script = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        os.chdir({str(ROOT)!r})
        from offline.runtime import run_program
        from pathlib import Path
        plan = run_program(Path({str(ROOT)!r}), "dev").plan
        assert len(plan.resources) > 300, len(plan.resources)
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("pulumi_aws."))))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    modules: list[str] = json.loads(done.stdout)
    return modules


def _exports_in_subprocess(services: list[str], lazy: bool) -> dict[str, dict[str, str]]:
    """`{service: {name: "<module>.<qualname>"}}` for every public name of each service package, in a
    fresh interpreter with or without the lazy finder."""
    script = textwrap.dedent(
        f"""
        import importlib, json, sys
        sys.path.insert(0, {str(ROOT)!r})
        if {lazy!r}:
            from components import sdk_imports
            sdk_imports.install()
        out = {{}}
        for service in {services!r}:
            package = importlib.import_module("pulumi_aws." + service)
            package._utilities  # pulumi_aws loads service packages lazily: this runs their __init__.py
            names = {{}}
            for name in dir(package):
                if name.startswith("_"):
                    continue
                value = getattr(package, name)
                if isinstance(value, type(sys)):
                    continue  # submodules appear as attributes once imported; not an export
                names[name] = f"{{getattr(value, '__module__', '?')}}.{{getattr(value, '__qualname__', type(value).__name__)}}"
            out[service] = names
        print(json.dumps(out))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    exports: dict[str, dict[str, str]] = json.loads(done.stdout)
    return exports


def test_lazy_packages_export_exactly_what_the_generated_init_exports(preview_modules: list[str]) -> None:
    # Every AWS service the program uses (a package directly under pulumi_aws with modules loaded).
    services = sorted(
        {m.split(".")[1] for m in preview_modules if m.count(".") == 2 and not m.split(".")[1].startswith("_")}
    )
    assert {"ec2", "wafv2", "ecs", "iam", "lambda_"} <= set(services)
    eager = _exports_in_subprocess(services, lazy=False)
    lazy = _exports_in_subprocess(services, lazy=True)
    for service in services:
        assert lazy[service] == eager[service], service
        assert len(eager[service]) > 5, service  # the comparison covered the whole service


def test_a_preview_loads_only_the_modules_it_uses(preview_modules: list[str]) -> None:
    ec2 = {m for m in preview_modules if m.startswith("pulumi_aws.ec2.")}
    # What the program declares (Network: VPC endpoints, security groups, flow logs) is loaded ...
    assert {"pulumi_aws.ec2.security_group", "pulumi_aws.ec2.flow_log", "pulumi_aws.ec2._inputs"} <= ec2
    # ... and the rest of the service's ~190 modules are not.
    assert "pulumi_aws.ec2.vpc_ipam" not in ec2
    assert "pulumi_aws.ec2.transit_gateway" not in ec2
    assert len(ec2) < 40


@pytest.fixture
def service_package(tmp_path: Path) -> Path:
    """A package shaped like a generated `pulumi_aws.<service>`: star imports, `_inputs`, `outputs`."""
    folder = tmp_path / "fake_service"
    folder.mkdir()
    (folder / "__init__.py").write_text(
        "import typing\n"
        "from .alpha import *\n"
        "from .beta import *\n"
        "from ._inputs import *\n"
        "from . import outputs\n"
        "INIT_RAN = True\n"
    )
    (folder / "alpha.py").write_text(
        "import typing\n__all__ = ['AlphaArgs', 'Alpha', 'Shared']\nAlphaArgs = 1\nAlpha = 2\nShared = 'alpha'\n"
    )
    (folder / "beta.py").write_text("__all__ = ['Beta', 'Shared']\nBeta = 3\nShared = 'beta'\n")
    (folder / "_inputs.py").write_text("__all__ = ['NestedArgs']\nNestedArgs = 4\n")
    (folder / "outputs.py").write_text("Nested = 5\n")
    return folder


def _load(folder: Path) -> types.ModuleType:
    name = folder.name
    spec = importlib.util.spec_from_file_location(
        name,
        folder / "__init__.py",
        loader=sdk_imports.LazyServiceLoader(str(folder / "__init__.py")),
        submodule_search_locations=[str(folder)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_a_module_is_imported_only_when_one_of_its_names_is_used(service_package: Path) -> None:
    try:
        package = _load(service_package)
        assert package.INIT_RAN is True  # the rest of __init__.py ran
        assert package.NestedArgs == 4  # _inputs is imported as before
        assert "fake_service.alpha" not in sys.modules and "fake_service.beta" not in sys.modules
        assert package.Alpha == 2
        assert "fake_service.alpha" in sys.modules and "fake_service.beta" not in sys.modules
        assert package.AlphaArgs == 1  # the whole __all__ of the module came with it
        assert "Beta" in dir(package)  # listed before it is loaded
        with pytest.raises(AttributeError, match="has no attribute 'Gamma'"):
            _ = package.Gamma
    finally:
        for name in [m for m in sys.modules if m == "fake_service" or m.startswith("fake_service.")]:
            del sys.modules[name]


def test_a_name_two_modules_export_resolves_to_the_later_one_as_star_imports_do(service_package: Path) -> None:
    try:
        package = _load(service_package)
        assert package.Shared == "beta"
    finally:
        for name in [m for m in sys.modules if m == "fake_service" or m.startswith("fake_service.")]:
            del sys.modules[name]


def test_a_package_without_star_imports_runs_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "plain_service"
    folder.mkdir()
    (folder / "__init__.py").write_text("VALUE = 42\n")
    try:
        package = _load(folder)
        assert package.VALUE == 42
        assert "__getattr__" not in vars(package)
    finally:
        sys.modules.pop("plain_service", None)


def test_a_module_without_all_is_an_import_error_naming_the_file(service_package: Path) -> None:
    (service_package / "beta.py").write_text("Beta = 3\n")
    try:
        package = _load(service_package)
        with pytest.raises(ImportError, match=r"beta\.py: no `__all__"):
            _ = package.Beta
    finally:
        for name in [m for m in sys.modules if m == "fake_service" or m.startswith("fake_service.")]:
            del sys.modules[name]


def test_install_puts_one_finder_before_the_path_finder() -> None:
    sdk_imports.install()
    sdk_imports.install()
    ours = [i for i, finder in enumerate(sys.meta_path) if isinstance(finder, sdk_imports.LazyServiceFinder)]
    assert len(ours) == 1
    assert ours[0] < sys.meta_path.index(importlib.machinery.PathFinder)
