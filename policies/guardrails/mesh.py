"""The service mesh: `mtls-required` (stack) and `app-mesh-end-of-support` (resource).

mTLS is read from what the platform deploys: each Fargate microservice's task definition runs a
container named `envoy` whose `command` is `["--config-yaml", "<Envoy v3 bootstrap as JSON>"]`.
* Every listener bound to a non-loopback address terminates TLS that requires a client
  certificate, verifies it against a trusted CA and restricts the callers (SAN matchers in the
  validation context, or an RBAC filter). The one exception is the edge port (the load balancer's
  listener): TLS without client certificates, reachable only from the load balancer's security group.
* A service that other services' security groups may reach on the mesh port has such a listener on
  the mesh port (a service nobody calls may have none: a closed port cannot be misconfigured).
* Every cluster with a non-loopback endpoint originates TLS with a client certificate, verifies the
  server against a trusted CA and checks its SAN.
* Between two services' own security groups, only the mesh port is open.
* ECS Service Connect is not mTLS: with `tls` it is "TLS, not mutual", without it plaintext.
Bootstrap keys are accepted in snake_case and lowerCamelCase (Envoy's JSON parser takes both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .containers import container_definitions
from .core import (
    FARGATE_SERVICE,
    TASK_DEFINITION,
    Config,
    Deferred,
    EnforcementLevel,
    Finding,
    InvalidJson,
    Resource,
    ResourceRule,
    Severity,
    StackResource,
    StackRule,
    as_list,
    in_data_component,
    mapping,
    number,
    service_owner,
    truthy,
)
from .firewall import IngressEdge, ingress_edges

ECS_SERVICE = "aws:ecs/service:Service"
SIDECAR = "envoy"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


# --------------------------------------------------------------------------------------------------
# The Envoy bootstrap.
# --------------------------------------------------------------------------------------------------
def _get(data: Any, key: str) -> Any:
    """A bootstrap field by its snake_case name, also accepting lowerCamelCase."""
    data = mapping(data)
    if key in data:
        return data[key]
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
    return data.get(camel)


def _socket(address: Any) -> tuple[str, int | None]:
    socket = mapping(_get(address, "socket_address"))
    port = number(_get(socket, "port_value"))
    if _get(address, "pipe"):
        return "pipe", None
    return str(_get(socket, "address") or ""), int(port) if port is not None else None


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1", "pipe") or host.startswith("127.")


def _tls_context(transport_socket: Any, kind: str) -> Mapping[str, Any] | None:
    typed = mapping(_get(transport_socket, "typed_config"))
    return typed if str(typed.get("@type", "")).endswith(kind) else None


def _has_certificate(context: Any) -> bool:
    return bool(_get(context, "tls_certificates") or _get(context, "tls_certificate_sds_secret_configs"))


def _validation(context: Any) -> tuple[bool, bool]:
    """(verifies the peer against a trusted CA, matches the peer's SAN) for a common_tls_context."""
    combined = mapping(_get(context, "combined_validation_context"))
    contexts = [mapping(_get(context, "validation_context")), mapping(_get(combined, "default_validation_context"))]
    trusted = any(_get(c, "trusted_ca") for c in contexts) or bool(
        _get(context, "validation_context_sds_secret_config") or _get(combined, "validation_context_sds_secret_config")
    )
    san = any(_get(c, "match_typed_subject_alt_names") or _get(c, "match_subject_alt_names") for c in contexts)
    return trusted, san


def _has_rbac(chain: Any) -> bool:
    for network_filter in as_list(_get(chain, "filters")):
        if "rbac" in str(_get(network_filter, "name")):
            return True
        http_filters = as_list(_get(_get(network_filter, "typed_config"), "http_filters"))
        if any("rbac" in str(_get(f, "name")) for f in http_filters):
            return True
    return False


def _local_cluster(cluster: Any) -> bool:
    endpoints = [
        _socket(_get(_get(lb, "endpoint"), "address"))[0]
        for group in as_list(_get(_get(cluster, "load_assignment"), "endpoints"))
        for lb in as_list(_get(group, "lb_endpoints"))
    ]
    return bool(endpoints) and all(_loopback(host) for host in endpoints)


def check_bootstrap(bootstrap: Any, *, mesh_port: int, edge_port: int, has_callers: bool) -> Iterator[str]:
    """What keeps an Envoy bootstrap from strict mTLS east-west (messages without the service name)."""
    if _get(bootstrap, "dynamic_resources"):
        yield "its Envoy bootstrap uses dynamic_resources (xDS); only a static bootstrap can be verified."
    static = _get(bootstrap, "static_resources")
    inbound = False
    for listener in as_list(_get(static, "listeners")):
        host, port = _socket(_get(listener, "address"))
        if _loopback(host):
            continue  # reachable only from inside the task (the app's outbound calls)
        label = f"listener '{_get(listener, 'name')}' on {host}:{port}"
        inbound = inbound or port == mesh_port
        for chain in as_list(_get(listener, "filter_chains")):
            yield from _downstream(label, chain, mutual=port != edge_port)
    if has_callers and not inbound:
        yield (
            f"other services' security groups may reach it on the mesh port {mesh_port}, but its Envoy has no "
            "inbound mTLS listener there."
        )
    for cluster in as_list(_get(static, "clusters")):
        if not _local_cluster(cluster):
            yield from _upstream(f"outbound cluster '{_get(cluster, 'name')}'", cluster)


def _downstream(label: str, chain: Any, *, mutual: bool) -> Iterator[str]:
    tls = _tls_context(_get(chain, "transport_socket"), DOWNSTREAM_TLS)
    if tls is None:
        yield f"{label} accepts plaintext: its filter chain has no DownstreamTlsContext transport socket."
        return
    context = _get(tls, "common_tls_context")
    if not _has_certificate(context):
        yield f"{label} presents no certificate (common_tls_context.tls_certificates)."
    if not mutual:
        return
    if not truthy(_get(tls, "require_client_certificate")):
        yield f"{label} does not require a client certificate (require_client_certificate: true): TLS, not mutual."
    trusted, san = _validation(context)
    if not trusted:
        yield f"{label} does not verify client certificates against the mesh CA (validation_context.trusted_ca)."
    if not san and not _has_rbac(chain):
        yield (
            f"{label} admits every certificate of the CA: restrict the callers with "
            "validation_context.match_typed_subject_alt_names or an RBAC filter."
        )


def _upstream(label: str, cluster: Any) -> Iterator[str]:
    tls = _tls_context(_get(cluster, "transport_socket"), UPSTREAM_TLS)
    if tls is None:
        yield f"{label} connects in plaintext: it has no UpstreamTlsContext transport socket."
        return
    context = _get(tls, "common_tls_context")
    if not _has_certificate(context):
        yield f"{label} presents no client certificate (common_tls_context.tls_certificates): TLS, not mutual."
    trusted, san = _validation(context)
    if not trusted:
        yield f"{label} does not verify the server against the mesh CA (validation_context.trusted_ca)."
    if not san:
        yield f"{label} does not check the server's identity (validation_context.match_typed_subject_alt_names)."


def envoy_bootstrap(task_definition: Resource) -> tuple[Any, str | None]:
    """(bootstrap, None) or (None, why it cannot be read) for a task definition's `envoy` container."""
    try:
        containers = container_definitions(task_definition.props)
    except InvalidJson as error:
        return None, f"containerDefinitions of task definition '{task_definition.name}' cannot be read ({error})."
    envoy = next((c for c in containers if c.get("name") == SIDECAR), None)
    if envoy is None:
        return None, (
            f"task definition '{task_definition.name}' has no '{SIDECAR}' sidecar container, so the service is "
            "not in the mTLS mesh."
        )
    command = [str(c) for c in as_list(envoy.get("command"))]
    if "--config-yaml" not in command or command.index("--config-yaml") + 1 >= len(command):
        return None, (
            f"the '{SIDECAR}' container of task definition '{task_definition.name}' has no inline bootstrap "
            "(command: --config-yaml <bootstrap>), so its mTLS cannot be verified."
        )
    try:
        return json.loads(command[command.index("--config-yaml") + 1]), None
    except json.JSONDecodeError as error:
        return None, f"the Envoy bootstrap of task definition '{task_definition.name}' is not valid JSON ({error})."


# --------------------------------------------------------------------------------------------------
# The stack rule.
# --------------------------------------------------------------------------------------------------
def _service_group(sg: StackResource) -> StackResource | None:
    """The Fargate microservice whose own security group `sg` is (a data store's group is not)."""
    owner = service_owner(sg)
    if owner is None or owner.resource_type != FARGATE_SERVICE or in_data_component(sg):
        return None
    return owner


def _east_west(edge: IngressEdge, mesh_port: int, called: set[str]) -> Iterator[Finding]:
    for target in edge.targets:
        callee = _service_group(target)
        if callee is None:
            continue
        for cidr in edge.cidrs:
            yield Finding(
                f"security group rule '{edge.rule.name}' opens {edge.ports()} of service '{callee.name}' "
                f"(security group '{target.name}') to {cidr}; a service's security group admits only its callers' "
                f"security groups (on the mesh port {mesh_port}) and the load balancer's.",
                edge.rule.urn,
            )
        for source in edge.sources:
            caller = _service_group(source)
            if caller is None or caller.urn == callee.urn:
                continue
            if edge.all_traffic or edge.from_port <= mesh_port <= edge.to_port:
                called.add(callee.urn)
            if not edge.only_ports({mesh_port}):
                yield Finding(
                    f"security group rule '{edge.rule.name}' opens {edge.ports()} of service '{callee.name}' "
                    f"(security group '{target.name}') to service '{caller.name}' (security group '{source.name}'); "
                    f"between services only the mesh port {mesh_port} may be open, so that east-west traffic "
                    "goes through the mTLS sidecars.",
                    edge.rule.urn,
                )


def _sidecar(
    service: StackResource, task_definitions: Sequence[StackResource], config: Config, has_callers: bool
) -> Iterator[Finding]:
    if not task_definitions:
        yield Finding(
            f"service '{service.name}': its component declares no {TASK_DEFINITION}, so its Envoy sidecar "
            "cannot be verified.",
            service.urn,
        )
    for task_definition in task_definitions:
        bootstrap, problem = envoy_bootstrap(task_definition)
        if problem is not None:
            yield Finding(f"service '{service.name}': {problem}", task_definition.urn)
            continue
        for message in check_bootstrap(
            bootstrap,
            mesh_port=int(config["meshPort"]),
            edge_port=int(config["edgePort"]),
            has_callers=has_callers,
        ):
            yield Finding(f"service '{service.name}': {message}", task_definition.urn)


def _service_connect(service: StackResource, mesh_port: int) -> Iterator[Finding]:
    connect = mapping(service.props.get("serviceConnectConfiguration"))
    if not truthy(connect.get("enabled")):
        return
    fix = (
        "Disable Service Connect and send east-west traffic through the Envoy sidecars of the ServiceMesh "
        f"component (mTLS on port {mesh_port})."
    )
    if any(mapping(s).get("tls") for s in as_list(connect.get("services"))):
        yield Finding(
            f"ECS service '{service.name}' uses ECS Service Connect with TLS: TLS, not mutual. Service Connect "
            "encrypts traffic with AWS Private CA certificates but does not authenticate the calling service "
            f"(no client certificates). {fix}",
            service.urn,
        )
    else:
        yield Finding(
            f"ECS service '{service.name}' uses ECS Service Connect without TLS: east-west traffic in plaintext. {fix}",
            service.urn,
        )


def check_mtls(resources: Sequence[StackResource], config: Config) -> Iterator[Finding]:
    mesh_port = int(config["meshPort"])
    deferred = Deferred()
    called: set[str] = set()
    yield from deferred.each(
        resources, lambda r: [f for edge in ingress_edges(r) for f in _east_west(edge, mesh_port, called)]
    )
    task_definitions: dict[str, list[StackResource]] = {}
    for r in resources:
        owner = service_owner(r) if r.resource_type == TASK_DEFINITION else None
        if owner is not None:
            task_definitions.setdefault(owner.urn, []).append(r)
    services = [r for r in resources if r.resource_type == FARGATE_SERVICE]
    yield from deferred.each(services, lambda s: _sidecar(s, task_definitions.get(s.urn, []), config, s.urn in called))
    ecs_services = [r for r in resources if r.resource_type == ECS_SERVICE]
    yield from deferred.each(ecs_services, lambda s: _service_connect(s, mesh_port))
    deferred.finish()


MTLS_REQUIRED = StackRule(
    name="mtls-required",
    description=(
        "Every service in the mesh speaks strict mutual TLS inbound and outbound through its Envoy sidecar, with "
        "certificates from the mesh CA; no plaintext east-west port is open between services."
    ),
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Build the task definition with the ServiceMesh component's Envoy sidecar (container 'envoy', "
        "command --config-yaml <bootstrap>): inbound listener on the mesh port with require_client_certificate, "
        "the mesh CA as trusted_ca and the allowed callers' SPIFFE ids as SAN matchers; outbound clusters with "
        "UpstreamTlsContext, the workload certificate and the upstream's SPIFFE id. Open only the mesh port "
        "between services' security groups. Do not use ECS Service Connect."
    ),
    config_schema={
        "meshPort": {
            "type": "integer",
            "default": 15443,
            "description": "Port of the sidecars' inbound mTLS listener (the only port open between services).",
        },
        "edgePort": {
            "type": "integer",
            "default": 15444,
            "description": "Port of the sidecars' TLS listener for the load balancer (no client certificate).",
        },
    },
    check=check_mtls,
)


# --------------------------------------------------------------------------------------------------
# App Mesh.
# --------------------------------------------------------------------------------------------------
APP_MESH_END_OF_SUPPORT = (
    "AWS App Mesh reached end of support on 2026-09-30: new meshes cannot be created and the service is no "
    "longer supported. Use the Envoy sidecars with mTLS from the ServiceMesh component "
    "(microservices:mesh:ServiceMesh) instead."
)


def _is_app_mesh(resource_type: str) -> bool:
    return resource_type.startswith(("aws:appmesh/", "aws-native:appmesh:")) or resource_type == TASK_DEFINITION


def check_app_mesh(resource: Resource, _config: Config) -> Iterator[str]:
    if resource.resource_type != TASK_DEFINITION:
        yield f"{resource.resource_type} '{resource.name}': {APP_MESH_END_OF_SUPPORT}"
    elif str(mapping(resource.props.get("proxyConfiguration")).get("type", "")).upper() == "APPMESH":
        yield f"task definition '{resource.name}' sets proxyConfiguration type APPMESH: {APP_MESH_END_OF_SUPPORT}"


APP_MESH_END_OF_SUPPORT_RULE = ResourceRule(
    name="app-mesh-end-of-support",
    description="No AWS App Mesh resources: App Mesh reached end of support on 2026-09-30.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Remove the aws.appmesh resources (and APPMESH proxy configurations); give each service the Envoy sidecar "
        "with mTLS from the ServiceMesh component, discovered through Cloud Map."
    ),
    applies=_is_app_mesh,
    check=check_app_mesh,
)

RULES = [MTLS_REQUIRED, APP_MESH_END_OF_SUPPORT_RULE]
