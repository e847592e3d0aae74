"""EventSchemaRegistry: the EventBridge schema registry of the versioned event contracts.

One schema per contract type AND version, named `<source>@<DetailType>-v<N>`, converted to draft-04
by `contracts.draft4` (the only dialect besides OpenAPI the registry accepts). A child of the
EventBus (type token `microservices:events:EventSchemaRegistry`: it keeps the module name it was
declared under, because a type token is part of every child's URN).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from contracts.draft4 import to_draft4
from model.errors import ConfigError
from model.spec import ServiceSpec

_SCHEMA_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.@_-]{0,384}$")


@dataclass(frozen=True)
class Contract:
    detail_type: str
    version: int
    source: str
    path: Path

    @property
    def schema_name(self) -> str:
        """Registry name `<source>@<DetailType>-v<N>`, e.g. `microservices.order@OrderPlaced-v2`."""
        return f"{self.source}@{self.detail_type}-v{self.version}"


def discover_contracts(schema_dir: Path, catalog: Sequence[ServiceSpec]) -> list[Contract]:
    """Every `<DetailType>/v<N>.json` under `schema_dir`, with the source of the service publishing it.

    A contract whose detail-type no spec publishes is an error (a stale file or a typo), as is a
    detail-type published by two services (the registry name would be ambiguous).
    """
    publishers: dict[str, list[str]] = {}
    for spec in catalog:
        for detail_type in spec.publishes:
            publishers.setdefault(detail_type, []).append(spec.event_source)
    contracts = []
    for type_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
        for path in sorted(type_dir.iterdir()):
            match = _SCHEMA_FILE.match(path.name)
            if not match:
                continue
            sources = publishers.get(type_dir.name, [])
            if len(sources) != 1:
                who = "no service publishes it" if not sources else f"published by {', '.join(sources)}"
                raise ConfigError(f"event contract {path}: detail-type {type_dir.name!r} needs one publisher; {who}")
            contract = Contract(type_dir.name, int(match.group(1)), sources[0], path)
            if not _SCHEMA_NAME.match(contract.schema_name):
                raise ConfigError(f"event contract {path}: {contract.schema_name!r} is not a valid schema name")
            contracts.append(contract)
    return sorted(contracts, key=lambda c: (c.detail_type, c.version))


@dataclass(frozen=True)
class EventSchemaRegistryArgs:
    schema_dir: Path
    catalog: Sequence[ServiceSpec]


class EventSchemaRegistry(pulumi.ComponentResource):
    """An EventBridge schema registry with one schema per contract type AND version (each version is
    its own schema, not a registry revision of one schema, so v1 and v2 stay visible side by side
    while producers emit both)."""

    registry_name: pulumi.Output[str]
    schema_names: list[str]

    def __init__(
        self,
        name: str,
        args: EventSchemaRegistryArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`context.tags` tag the registry and every schema."""
        super().__init__("microservices:events:EventSchemaRegistry", name, None, opts)
        tags = dict(context.tags)
        contracts = discover_contracts(args.schema_dir, args.catalog)
        registry = aws.schemas.Registry(
            f"{name}-registry",
            description="Versioned contracts of the platform's domain events (EventBridge detail)",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        for contract in contracts:
            document = json.loads(contract.path.read_text(encoding="utf-8"))
            aws.schemas.Schema(
                f"{name}-{contract.detail_type}-v{contract.version}",
                name=contract.schema_name,
                registry_name=registry.name,
                type="JSONSchemaDraft4",
                content=json.dumps(to_draft4(document), sort_keys=True),
                description=str(document.get("description") or document.get("title") or "")[:256],
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.registry_name = registry.name
        self.schema_names = [c.schema_name for c in contracts]
        self.register_outputs({"registryName": self.registry_name, "schemaNames": self.schema_names})
