"""Component args keep only what is theirs (STYLE.md "Composition", ARCHITECTURE.md "One context object").

The facts every component shares (environment, account, region, partition, tags, the platform key)
come from the `PlatformContext` each component is given after its args, never from args fields; and a
section of the stack config reaches only the component it configures (the `data` section the data
stores, and their owners, which hand it on), so a reader sees from the args what a component needs.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any

import pydantic
import pytest

import components
from model.config import StackConfig

SHARED_FACTS = {"environment", "account_id", "account", "region", "partition", "tags", "kms_key_arn", "key_arn"}
"""What `PlatformContext` carries (under the names the args used to repeat it with)."""

SECTION_OWNERS = {
    "NetworkConfig": {"NetworkArgs"},
    "MeshConfig": {"ServiceMeshArgs"},
    "EdgeConfig": {"EdgeArgs"},
    "EventsConfig": {"EventBusArgs"},
    "ObservabilityConfig": {"ObservabilityArgs"},
    # The data stores' settings; a store's owner receives them only to hand them to its stores.
    "DataConfig": {"DataStoreArgs", "FargateMicroserviceArgs", "LambdaServiceArgs"},
}
"""Which component args may take a whole config section. `compute`, `deployment` and the rest are read
by several components, each of which gets only the values it uses (e.g. `TaskRuntime`, `Rollout`)."""


def component_args() -> list[type[Any]]:
    """Every `...Args` dataclass defined in a components module."""
    found = []
    modules = [m.name for m in pkgutil.walk_packages(components.__path__, "components.")]
    for name in modules:
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and cls_name.endswith("Args") and dataclasses.is_dataclass(cls):
                found.append(cls)
    return found


def config_sections() -> set[str]:
    return {
        field.annotation.__name__
        for field in StackConfig.model_fields.values()
        if isinstance(field.annotation, type) and issubclass(field.annotation, pydantic.BaseModel)
    } | {"StackConfig"}


ARGS = component_args()


def test_the_args_classes_are_found() -> None:
    names = {cls.__name__ for cls in ARGS}
    assert {"DataStoreArgs", "FargateMicroserviceArgs", "ClusterArgs", "ServiceImageArgs"} <= names
    assert set(SECTION_OWNERS) <= config_sections()


@pytest.mark.parametrize("args", ARGS, ids=lambda cls: cls.__name__)
def test_args_do_not_repeat_the_platform_context(args: type[Any]) -> None:
    for field in dataclasses.fields(args):
        # `environment` as a mapping is a container's environment variables, not the stack's name.
        if field.name in SHARED_FACTS and not (field.name == "environment" and "Mapping" in str(field.type)):
            pytest.fail(f"{args.__name__}.{field.name}: a shared fact; read it from the PlatformContext")


@pytest.mark.parametrize("args", ARGS, ids=lambda cls: cls.__name__)
def test_a_config_section_reaches_only_the_component_it_configures(args: type[Any]) -> None:
    sections = config_sections()
    for field in dataclasses.fields(args):
        words = set(str(field.type).replace("|", " ").replace("[", " ").replace("]", " ").split())
        for section in words & sections:
            assert args.__name__ in SECTION_OWNERS.get(section, set()), (
                f"{args.__name__}.{field.name}: {section} is a whole config section; pass only the values "
                "this component uses"
            )
