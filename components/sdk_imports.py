"""Load only the `pulumi_aws` resource modules the program uses, not every module of each AWS service.

`pulumi_aws` already loads its service packages lazily (`pulumi_aws.ec2` is imported on first use of
`aws.ec2`), but each service package's generated `__init__.py` then imports every module of that
service: `aws.ec2.Vpc` loads all ~190 ec2 modules (about 28 MiB and 0.4 s here), `aws.wafv2.WebAcl`
all of wafv2's. The program uses about 80 classes out of some 4,000 in the 25 services it touches.

`install()` puts `LazyServiceFinder` first on `sys.meta_path`. For a package `pulumi_aws.<service>`
it runs that package's own `__init__.py` with its `from .<module> import *` lines (the resource and
function modules) left out, and gives the package a module `__getattr__` (PEP 562): the first time a
name such as `Vpc` is looked up, the one module whose `__all__` lists it is imported and its
`__all__` names are copied into the package, exactly what the left-out line would have done. The
rest of `__init__.py` (`_enums`, `_inputs`, `outputs`, any other statement) runs unchanged, and the
type-token registry the engine uses to rebuild resource references (`pulumi_aws/__init__.py`,
`_utilities.Module.construct`) finds classes with `getattr` on the package, so it goes through the
same `__getattr__`.

Which module exports which name is read from the first lines of each module (`__all__ = [...]` is
line 17 or so of every generated module) when a service is first asked for a name; nothing is
guessed from the class name. If a package's `__init__.py` does not have the expected shape (another
SDK generation), it is executed unchanged: the fallback is the SDK's own behaviour.

Measured effect (benchmarks/README.md, "Speed"): fewer modules, less memory and import time for every
stack, under the offline preview and the real `pulumi` CLI alike (the program is the same).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PACKAGE = "pulumi_aws"

_STAR_IMPORT = re.compile(r"^from \.(?P<module>[a-z][a-z0-9_]*) import \*$")
"""A generated `__init__.py` line that re-exports a resource or function module (`from .vpc import *`).
Private modules (`_enums`, `_inputs`) do not match and are imported as before."""

_ALL = re.compile(r"^__all__ = (\[[^\]]*\])", re.MULTILINE)
_NAME = re.compile(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
_HEADER_BYTES = 4096
"""`__all__` sits after the module docstring-less header of imports (about 600 bytes in): 4 KiB is ample."""


class LazyServiceLoader(importlib.abc.Loader):
    """Executes a `pulumi_aws.<service>` package's `__init__.py` without its per-module star imports."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        source = Path(self.origin).read_text(encoding="utf-8")
        lines = source.splitlines()
        deferred = [match["module"] for line in lines if (match := _STAR_IMPORT.match(line))]
        # Left-out lines become empty lines, so line numbers in tracebacks still match the file.
        kept = "\n".join("" if _STAR_IMPORT.match(line) else line for line in lines)
        exec(compile(kept, self.origin, "exec"), module.__dict__)
        if deferred:
            _make_lazy(module, deferred)


def _make_lazy(package: types.ModuleType, deferred: Sequence[str]) -> None:
    """Give `package` the PEP 562 hooks that import a deferred module when one of its names is used."""
    index: dict[str, str] = {}
    loaded: set[str] = set()
    own_names = {name for name, value in package.__dict__.items() if not isinstance(value, types.ModuleType)}
    """What `__init__.py` itself bound (its imports of `_enums`, `_inputs`, ...), before any deferred module."""

    def exporter(name: str) -> str | None:
        if not index:
            index.update(_exports(Path(package.__file__ or "").parent, deferred))
        return index.get(name)

    def __getattr__(name: str) -> Any:
        module_name = exporter(name) if not name.startswith("__") else None
        if module_name is None or module_name in loaded:
            raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")
        loaded.add(module_name)
        module = importlib.import_module(f"{package.__name__}.{module_name}")
        namespace = package.__dict__
        for exported in getattr(module, "__all__", ()):
            # As the left-out `from .<module> import *` would have bound it: the name's last exporter
            # wins (over the submodule object the import binds, as for the function `get_event_bus` in
            # module `get_event_bus`), and what `__init__.py` bound itself (`_inputs`, last there) stays.
            if index.get(exported) == module_name and exported not in own_names:
                namespace[exported] = getattr(module, exported)
        return namespace[name]

    def __dir__() -> list[str]:
        exporter("")
        return sorted({*package.__dict__, *index})

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    package.__dir__ = __dir__  # type: ignore[method-assign]


def _exports(folder: Path, modules: Sequence[str]) -> dict[str, str]:
    """`{name: module}` for every name in the `__all__` of each of `modules` (read from their first 4 KiB)."""
    exports: dict[str, str] = {}
    for module in modules:
        path = folder / f"{module}.py"
        with path.open("rb") as handle:
            head = handle.read(_HEADER_BYTES).decode("utf-8", errors="replace")
        match = _ALL.search(head)
        if match is None:
            raise ImportError(f"{path}: no `__all__ = [...]` in its first {_HEADER_BYTES} bytes", path=str(path))
        # The list holds quoted identifiers only; read with a regex, not `ast.literal_eval`: this may run
        # on an executor thread (a resource reference rebuilt by `getattr` on the package), and the `ast`
        # module of CPython 3.11 (3.11.7 here) can fail in threaded programs with "SystemError: AST
        # constructor recursion depth mismatch" (python/cpython#106905).
        for name in _NAME.findall(match.group(1)):
            exports[name] = module  # a later star import wins, as in the generated __init__.py
    return exports


class LazyServiceFinder(importlib.abc.MetaPathFinder):
    """Finds `pulumi_aws.<service>` packages as the normal path finder does, with `LazyServiceLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, service = fullname.partition(".")
        if package != PACKAGE or not service or "." in service or service.startswith("_"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.submodule_search_locations:
            return None
        spec.loader = LazyServiceLoader(spec.origin)
        return spec


def install() -> None:
    """Put `LazyServiceFinder` first on `sys.meta_path` (once). Service packages imported before this
    stay as they are; call it before the program first touches `aws.<service>`."""
    if not any(isinstance(finder, LazyServiceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LazyServiceFinder())
