"""mypy analyses exactly the pulumi_aws packages the code uses (see [tool.mypy] in pyproject.toml).

Skipping the rest of pulumi_aws cuts a cold `mypy` from 107-150 s to about 40 s; a package the code
starts using must be added to the analysed list, or its calls would be typed Any without anyone noticing.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

from tests.conftest import ROOT, parse_python


def checked_folders() -> list[str]:
    """The folders `make typecheck` runs mypy on (read from the Makefile)."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "$(BIN)/mypy " in line:
            return line.split("$(BIN)/mypy ", 1)[1].split()
    raise AssertionError("no mypy command in the Makefile")


def aws_package_dir() -> Path:
    spec = importlib.util.find_spec("pulumi_aws")
    assert spec is not None and spec.origin
    return Path(spec.origin).parent


def used_service_packages() -> set[str]:
    packages = {p.name for p in aws_package_dir().iterdir() if (p / "__init__.py").is_file()}
    used: set[str] = set()
    for folder in checked_folders():
        for path in (ROOT / folder).rglob("*.py"):
            tree = parse_python(path)
            aliases = {"pulumi_aws"}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for name in node.names:
                        if name.name == "pulumi_aws":
                            aliases.add(name.asname or name.name)
                        elif name.name.startswith("pulumi_aws."):
                            used.add(name.name.split(".")[1])
                elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pulumi_aws"):
                    parts = node.module.split(".")
                    if len(parts) > 1:
                        used.add(parts[1])
                    else:
                        used.update(n.name for n in node.names if n.name in packages)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and node.attr in packages
                ):
                    used.add(node.attr)
    return used


def analysed() -> tuple[set[str], str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    overrides = config["overrides"]
    [skip] = [o for o in overrides if o.get("follow_imports") == "skip"]
    [normal] = [o for o in overrides if o.get("follow_imports") == "normal"]
    return set(normal["module"]), skip["module"]


def test_mypy_analyses_every_pulumi_aws_package_the_code_uses_and_no_other() -> None:
    modules, skipped = analysed()
    assert skipped == ["pulumi_aws.*"]
    top_level = {f"pulumi_aws.{p.stem}" for p in aws_package_dir().glob("*.py") if p.stem != "__init__"}
    services = {f"pulumi_aws.{name}.*" for name in used_service_packages()}
    assert "pulumi_aws.ecs.*" in services and "pulumi_aws.iam.*" in services
    missing = sorted(({"pulumi_aws"} | top_level | services) - modules)
    assert not missing, f"add to the analysed list in pyproject.toml [tool.mypy] overrides: {missing}"
    assert modules == {"pulumi_aws"} | top_level | services, f"no longer used: {sorted(modules - services - top_level)}"
