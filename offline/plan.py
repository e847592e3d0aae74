"""The recorded plan: every resource the program registered, as the engine would see it.

This is the one data shape shared by the offline preview (which records it), the JSON exports
(`pulumi preview --json` steps and `pulumi stack export` deployments) and the policy runner (which
feeds it to the policy pack over the Analyzer gRPC interface).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlannedResource:
    """One RegisterResource request, plus the outputs the mocks answered with."""

    urn: str
    type: str
    name: str
    custom: bool
    """True for a provider resource, False for a ComponentResource (or the stack)."""
    parent: str
    """URN of the parent resource ('' only for the stack itself)."""
    provider: str = ""
    """Provider reference `<provider-urn>::<id>` when one was passed explicitly."""
    id: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    """Inputs in the wire form the engine receives: camelCase property names; secrets stay secret
    objects (`{"4dabf18193072939515e22adb298388d": ..., "value": ...}`); unknowns are `UNKNOWN`."""
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    remote: bool = False
    """True for a multi-language (remote) component such as awsx.ec2.Vpc."""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    secret_outputs: list[str] = field(default_factory=list)


UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The sentinel the Pulumi engine uses for values that are unknown during preview."""


@dataclass
class Plan:
    """The whole recorded program run for one stack."""

    project: str
    stack: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_urn(self) -> dict[str, PlannedResource]:
        return {r.urn: r for r in self.resources}

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]
