"""The Analyzer gRPC protocol as the engine speaks it: enums, property marshalling and request builders.

Properties are marshalled as the engine marshals them for analyzers (`MarshalOptions{KeepUnknowns,
KeepSecrets, SkipInternalKeys}`): secrets stay secret signature objects, unknowns stay the unknown
sentinel, output values are unwrapped, resource references become their ID (or URN for components), and
keys starting with `__` are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2

from offline.plan import UNKNOWN, Plan, PlannedResource
from offline.policy.report import EnforcementLevel, urn_name

# Signatures of the special objects in the engine's property encoding (sdk/go/common/resource/properties.go).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
RESOURCE_REFERENCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"

# The pulumi.policy host never dials the engine (it only parses the argument), and there is no engine
# offline, so we pass an address nothing listens on rather than invent a server.
OFFLINE_ENGINE_ADDRESS = "127.0.0.1:0"

# Same limit as the engine's gRPC channels to plugins (rpcutil.GrpcChannelOptions): 400 MiB.
_MAX_MESSAGE_BYTES = 400 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
]

LEVEL_FROM_PROTO: dict[int, EnforcementLevel] = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
LEVEL_TO_PROTO = {level: value for value, level in LEVEL_FROM_PROTO.items()}
SEVERITY_FROM_PROTO = {
    analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED: "",
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}
POLICY_TYPE_FROM_PROTO = {
    analyzer_pb2.POLICY_TYPE_UNKNOWN: "unknown",
    analyzer_pb2.POLICY_TYPE_RESOURCE: "resource",
    analyzer_pb2.POLICY_TYPE_STACK: "stack",
}


# --- property marshalling -------------------------------------------------------------------------------


def _secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "value": value}


def _engine_value(value: Any, skip_internal_keys: bool, path: str) -> Any:
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_engine_value(v, skip_internal_keys, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, Mapping):
        raise TypeError(f"cannot marshal {type(value).__name__} at {path!r} as a resource property")
    sig = value.get(SIG_KEY)
    if sig == SECRET_SIG:
        return _secret(_engine_value(value.get("value"), skip_internal_keys, path))
    if sig == OUTPUT_VALUE_SIG:
        # Analyzers get no output values: unknown ones become the unknown sentinel, secret ones secrets.
        inner = _engine_value(value["value"], skip_internal_keys, path) if "value" in value else UNKNOWN
        return _secret(inner) if value.get("secret") else inner
    if sig == RESOURCE_REFERENCE_SIG:
        # Without KeepResources a reference is its ID (unknown while empty), or its URN for a component.
        if "id" in value:
            return UNKNOWN if value["id"] in ("", None) else value["id"]
        return value.get("urn", "")
    return {
        key: _engine_value(item, skip_internal_keys, f"{path}.{key}" if path else key)
        for key, item in value.items()
        if not (skip_internal_keys and key.startswith("__"))
    }


def engine_properties(properties: Mapping[str, Any], *, skip_internal_keys: bool = True) -> struct_pb2.Struct:
    """Marshal a plan's property map into the Struct the engine sends to analyzers."""
    struct = struct_pb2.Struct()
    struct.update(_engine_value(dict(properties), skip_internal_keys, ""))
    return struct


def _resource_options(resource: PlannedResource, *, with_parent: bool) -> analyzer_pb2.AnalyzerResourceOptions:
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=resource.protect,
        deleteBeforeReplace=resource.delete_before_replace,
        # The plan keeps a bool; the engine only marks it defined when the program set it.
        deleteBeforeReplaceDefined=resource.delete_before_replace,
        additionalSecretOutputs=list(resource.secret_outputs),
        # Analyze carries the parent in the options; AnalyzeStack carries it on the resource only.
        parent=resource.parent if with_parent else "",
    )
    options.customTimeouts.SetInParent()  # the engine always sends the (zero) timeouts
    return options


def _provider_resource(
    resource: PlannedResource, by_urn: Mapping[str, PlannedResource]
) -> analyzer_pb2.AnalyzerProviderResource | None:
    if not resource.provider:
        return None
    provider = by_urn.get(resource.provider.rsplit("::", 1)[0])
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        urn=provider.urn,
        type=provider.type,
        name=urn_name(provider.urn),
        properties=engine_properties(provider.inputs),
    )


def build_analyze_request(
    resource: PlannedResource,
    by_urn: Mapping[str, PlannedResource],
    *,
    properties: Mapping[str, Any] | None = None,
    skip_internal_keys: bool = True,
) -> analyzer_pb2.AnalyzeRequest:
    """The request the step generator sends for one resource (Analyze, and Remediate without key skipping)."""
    request = analyzer_pb2.AnalyzeRequest(
        urn=resource.urn,
        type=resource.type,
        name=urn_name(resource.urn),
        properties=engine_properties(
            resource.inputs if properties is None else properties, skip_internal_keys=skip_internal_keys
        ),
        options=_resource_options(resource, with_parent=True),
    )
    provider = _provider_resource(resource, by_urn)
    if provider is not None:
        request.provider.CopyFrom(provider)
    return request


def build_analyze_stack_request(plan: Plan) -> analyzer_pb2.AnalyzeStackRequest:
    """`stepGenerator.AnalyzeResources`: every resource's outputs with parent and dependencies."""
    by_urn = plan.by_urn()
    request = analyzer_pb2.AnalyzeStackRequest()
    for resource in plan.resources:
        item = request.resources.add(
            urn=resource.urn,
            type=resource.type,
            name=urn_name(resource.urn),
            properties=engine_properties(resource.outputs),
            options=_resource_options(resource, with_parent=False),
            parent=resource.parent,
            dependencies=list(resource.dependencies),
        )
        for key, urns in resource.property_dependencies.items():
            if urns:  # the engine skips properties without dependencies
                item.propertyDependencies[key].urns.extend(urns)
        provider = _provider_resource(resource, by_urn)
        if provider is not None:
            item.provider.CopyFrom(provider)
    return request
