"""The service mesh: `mtls-required` (stack) and `app-mesh-end-of-support` (resource).

mTLS is read from what the platform deploys: each Fargate microservice's task definition runs a
container named `envoy` whose `command` is `["--config-yaml", "<Envoy v3 bootstrap as JSON>"]`.
* Every filter chain (including `default_filter_chain`) of every listener bound to a non-loopback
  address terminates TLS that requires a client certificate, verifies it against the mesh CA
  (`trusted_ca` from the sidecar's `MESH_CA_BUNDLE`, no `trust_chain_verification: ACCEPT_UNTRUSTED`)
  and restricts the callers: SAN matchers and RBAC principals are `exact` SPIFFE ids, and the
  callers they accept are exactly the services that declare a call to it (an outbound cluster
  verifying its identity). The one exception is the edge port (the load balancer's
  listener): TLS without client certificates, reachable only from the load balancer's security group.
* A service that other services' security groups may reach on the mesh port has such a listener on
  the mesh port (a service nobody calls may have none: a closed port cannot be misconfigured).
* Every cluster with a non-loopback endpoint originates TLS with a client certificate, verifies the
  server against the mesh CA and checks its SAN exactly, and that SAN is the identity of the service
  its endpoint names.
* Security groups: no group, shared or owned, opens a service's ports to another service except the
  mesh port, and that only from callers the service accepts; services are found by the groups their
  ECS services / Lambdas are attached to. Load balancers reach only the edge port, and their target
  groups send HTTPS to the `envoy` container's edge port.
* Other transport: ElastiCache replication groups have transit encryption `required`; SNS
  subscriptions deliver over HTTPS only (not `http`).
* ECS Service Connect is not mTLS: with `tls` it is "TLS, not mutual", without it plaintext.
Bootstrap keys are accepted in snake_case and lowerCamelCase (Envoy's JSON parser takes both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .access import AccessModel, model_of, shared_model
from .containers import container_definitions
from .core import (
    CACHE_REPLICATION_GROUP,
    FARGATE_SERVICE,
    LOAD_BALANCER_TYPES,
    SECURITY_GROUP,
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
    UnknownValueError,
    as_list,
    mapping,
    number,
    property_deps,
    service_owner,
    truthy,
)
from .firewall import IngressEdge

ECS_SERVICE = "aws:ecs/service:Service"
SIDECAR = "envoy"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
MESH_CA_ENV = "MESH_CA_BUNDLE"
"""The sidecar's environment variable holding the mesh CA bundle (copied from components/envoy.py
CA_BUNDLE_ENV: the pack cannot import the program; tests/test_policy_constants.py asserts they agree)."""
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
SNS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


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


def _validation_contexts(context: Any) -> list[Mapping[str, Any]]:
    combined = mapping(_get(context, "combined_validation_context"))
    return [
        c
        for c in (mapping(_get(context, "validation_context")), mapping(_get(combined, "default_validation_context")))
        if c
    ]


def _validation(context: Any) -> tuple[bool, bool]:
    """(verifies the peer against a trusted CA, matches the peer's SAN) for a common_tls_context."""
    combined = mapping(_get(context, "combined_validation_context"))
    contexts = _validation_contexts(context)
    trusted = any(_get(c, "trusted_ca") for c in contexts) or bool(
        _get(context, "validation_context_sds_secret_config") or _get(combined, "validation_context_sds_secret_config")
    )
    san = any(_get(c, "match_typed_subject_alt_names") or _get(c, "match_subject_alt_names") for c in contexts)
    return trusted, san


def _trust_problems(label: str, context: Any, peer: str) -> Iterator[str]:
    """What keeps a validation context from verifying the peer against the mesh CA."""
    for validation in _validation_contexts(context):
        if str(_get(validation, "trust_chain_verification") or "").upper() == "ACCEPT_UNTRUSTED":
            yield (
                f"{label} sets trust_chain_verification: ACCEPT_UNTRUSTED: {peer} certificates are not verified "
                "(any certificate is accepted)."
            )
        ca = mapping(_get(validation, "trusted_ca"))
        if ca and _get(ca, "environment_variable") != MESH_CA_ENV:
            source = json.dumps(ca, sort_keys=True)
            yield (
                f"{label} trusts {source}, not the mesh CA (trusted_ca.environment_variable {MESH_CA_ENV}): "
                f"{peer} certificates from other CAs would be accepted."
            )


def exact_sans(context: Any) -> tuple[set[str], list[str]]:
    """(the exact SAN values matched, the matchers that are not exact) of a common_tls_context."""
    exact: set[str] = set()
    loose: list[str] = []
    for validation in _validation_contexts(context):
        typed = as_list(_get(validation, "match_typed_subject_alt_names"))
        untyped = as_list(_get(validation, "match_subject_alt_names"))
        for entry in [*typed, *({"matcher": m} for m in untyped)]:
            matcher = mapping(_get(entry, "matcher"))
            kinds = sorted(k for k in matcher if k != "ignore_case" and k != "ignoreCase")
            if kinds == ["exact"] and not truthy(_get(matcher, "ignore_case")):
                exact.add(str(matcher["exact"]))
            else:
                loose.append(json.dumps(dict(matcher), sort_keys=True))
    return exact, loose


def rbac_principals(chain: Any) -> tuple[set[str] | None, list[str]]:
    """(exact principal names the ALLOW RBAC filters admit, principals that are not exact names);
    None when the chain has no RBAC filter."""
    found: set[str] | None = None
    loose: list[str] = []
    configs = []
    for network_filter in as_list(_get(chain, "filters")):
        if "rbac" in str(_get(network_filter, "name")):
            configs.append(mapping(_get(network_filter, "typed_config")))
        http_filters = as_list(_get(_get(network_filter, "typed_config"), "http_filters"))
        configs.extend(mapping(_get(f, "typed_config")) for f in http_filters if "rbac" in str(_get(f, "name")))
    for config in configs:
        rules = mapping(_get(config, "rules"))
        if str(_get(rules, "action") or "ALLOW").upper() != "ALLOW":
            continue
        found = found if found is not None else set()
        for policy in mapping(_get(rules, "policies")).values():
            for principal in as_list(_get(policy, "principals")):
                name = mapping(_get(_get(principal, "authenticated"), "principal_name"))
                if list(name) == ["exact"]:
                    found.add(str(name["exact"]))
                else:
                    loose.append(json.dumps(dict(mapping(principal)), sort_keys=True))
    return found, loose


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
        chains = [(f"{label} filter chain {i}", c) for i, c in enumerate(as_list(_get(listener, "filter_chains")))]
        if len(chains) == 1:
            chains = [(label, chains[0][1])]
        default = _get(listener, "default_filter_chain")
        if default:
            chains.append((f"{label} default_filter_chain", default))
        for chain_label, chain in chains:
            yield from _downstream(chain_label, chain, mutual=port != edge_port)
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
    yield from _trust_problems(label, context, "client")
    if not san and not _has_rbac(chain):
        yield (
            f"{label} admits every certificate of the CA: restrict the callers with "
            "validation_context.match_typed_subject_alt_names or an RBAC filter."
        )
    exact, loose = exact_sans(context)
    for matcher in loose:
        yield f"{label} matches client SANs with {matcher}: only exact SPIFFE ids name one caller."
    principals, loose_principals = rbac_principals(chain)
    for principal in loose_principals:
        yield f"{label} has an RBAC principal {principal} that is not an exact principal_name: it admits more than one caller."
    if principals is not None and san and principals != exact:
        yield (
            f"{label} accepts different callers in its RBAC filter ({', '.join(sorted(principals)) or 'none'}) and "
            f"its SAN matchers ({', '.join(sorted(exact)) or 'none'})."
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
    yield from _trust_problems(label, context, "server")
    exact, loose = exact_sans(context)
    for matcher in loose:
        yield f"{label} matches the server's SAN with {matcher}: only an exact SPIFFE id names one service."
    if len(exact) > 1:
        yield f"{label} accepts several server identities ({', '.join(sorted(exact))}): verify exactly the upstream's."
    host = next(
        (
            _socket(_get(_get(lb, "endpoint"), "address"))[0]
            for group in as_list(_get(_get(cluster, "load_assignment"), "endpoints"))
            for lb in as_list(_get(group, "lb_endpoints"))
        ),
        "",
    )
    expected = host.split(".", 1)[0]
    for identity in exact:
        if expected and identity.startswith("spiffe://") and identity.rstrip("/").rsplit("/", 1)[-1] != expected:
            yield (
                f"{label} connects to '{host}' but verifies the identity {identity}: the server's SAN must be the "
                f"SPIFFE id of '{expected}'."
            )


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
def _callees(model: AccessModel, sg: StackResource) -> list[StackResource]:
    """The Fargate microservices whose tasks carry `sg` (attached, or a group the service declares)."""
    return [s for s, _how in model.services_behind(sg) if s.resource_type == FARGATE_SERVICE]


def _load_balancer_groups(model: AccessModel) -> dict[str, StackResource]:
    groups = {}
    for r in model.resources:
        if r.resource_type in LOAD_BALANCER_TYPES:
            for sg in property_deps(r, "securityGroups", SECURITY_GROUP):
                groups[sg.urn] = r
    return groups


def _east_west(
    model: AccessModel,
    edge: IngressEdge,
    ports: tuple[int, int],
    called: set[str],
    accepts: Mapping[str, set[str] | None],
    balancers: Mapping[str, StackResource],
) -> Iterator[Finding]:
    mesh_port, edge_port = ports
    for target in edge.targets:
        for callee in _callees(model, target):
            for cidr in [*edge.cidrs, *(f"managed prefix list {p}" for p in edge.prefix_lists)]:
                yield Finding(
                    f"security group rule '{edge.rule.name}' opens {edge.ports()} of service '{callee.name}' "
                    f"(security group '{target.name}') to {cidr}; a service's security group admits only its callers' "
                    f"security groups (on the mesh port {mesh_port}) and the load balancer's.",
                    edge.rule.urn,
                )
            for source in edge.sources:
                balancer = balancers.get(source.urn)
                if balancer is not None and not model.services_behind(source):
                    if not edge.only_ports({edge_port}):
                        yield Finding(
                            f"security group rule '{edge.rule.name}' lets load balancer '{balancer.name}' (security "
                            f"group '{source.name}') reach {edge.ports()} of service '{callee.name}'; a load balancer "
                            f"reaches only the Envoy edge port {edge_port} (HTTPS).",
                            edge.rule.urn,
                        )
                    continue
                yield from _service_to_service(model, edge, target, source, callee, mesh_port, called, accepts)


def _service_to_service(
    model: AccessModel,
    edge: IngressEdge,
    target: StackResource,
    source: StackResource,
    callee: StackResource,
    mesh_port: int,
    called: set[str],
    accepts: Mapping[str, set[str] | None],
) -> Iterator[Finding]:
    for caller, how in model.services_behind(source):
        if caller.urn == callee.urn:
            continue
        attached = f", its {how} being attached to it" if how else ""
        who = f"service '{caller.name}' (security group '{source.name}'{attached})"
        if edge.all_traffic or edge.from_port <= mesh_port <= edge.to_port:
            called.add(callee.urn)
        if not edge.only_ports({mesh_port}):
            yield Finding(
                f"security group rule '{edge.rule.name}' opens {edge.ports()} of service '{callee.name}' "
                f"(security group '{target.name}') to {who}; between services only the mesh port "
                f"{mesh_port} may be open, so that east-west traffic goes through the mTLS sidecars.",
                edge.rule.urn,
            )
            continue
        accepted, name = accepts.get(callee.urn), _mesh_name(model, caller)
        # No or an unrestricted listener, or a caller without a readable sidecar: reported by themselves.
        if accepted and name is not None and name not in accepted:
            yield Finding(
                f"security group rule '{edge.rule.name}' opens the mesh port {mesh_port} of service "
                f"'{callee.name}' to {who}, a caller its Envoy does not accept; open the mesh port only "
                "to the callers the service accepts.",
                edge.rule.urn,
            )


def _mesh_name(model: AccessModel, service: StackResource) -> str | None:
    return next((name for name, s in model.identities.items() if s.urn == service.urn), None)


def _spiffe_name(identity: str) -> str:
    return identity.rstrip("/").rsplit("/", 1)[-1]


Bootstraps = dict[str, tuple[StackResource, StackResource, Any]]
"""Service URN -> (service, task definition, its Envoy bootstrap)."""


def _accepted(bootstrap: Any, mesh_port: int) -> set[str] | None:
    """The mesh names the inbound mesh listener admits (None: there is no such listener)."""
    accepted: set[str] | None = None
    for listener in as_list(_get(_get(bootstrap, "static_resources"), "listeners")):
        host, port = _socket(_get(listener, "address"))
        if _loopback(host) or port != mesh_port:
            continue
        for chain in [*as_list(_get(listener, "filter_chains")), _get(listener, "default_filter_chain")]:
            if not chain:
                continue
            tls = _tls_context(_get(chain, "transport_socket"), DOWNSTREAM_TLS)
            exact, _ = exact_sans(_get(tls, "common_tls_context")) if tls else (set(), [])
            principals, _ = rbac_principals(chain)
            names = {_spiffe_name(i) for i in (principals if principals is not None else exact)}
            accepted = (accepted or set()) | names
    return accepted


def _call_graph(model: AccessModel, bootstraps: Bootstraps, mesh_port: int) -> dict[str, set[str] | None]:
    return {urn: _accepted(bootstrap, mesh_port) for urn, (_s, _t, bootstrap) in bootstraps.items()}


def _callers_match(
    model: AccessModel, bootstraps: Bootstraps, accepts: Mapping[str, set[str] | None], complete: bool
) -> Iterator[Finding]:
    """The callers a service accepts are exactly the services that declare a call to it."""
    calls: dict[str, set[str]] = {}
    for urn, (_service, _task, bootstrap) in bootstraps.items():
        for cluster in as_list(_get(_get(bootstrap, "static_resources"), "clusters")):
            if _local_cluster(cluster):
                continue
            tls = _tls_context(_get(cluster, "transport_socket"), UPSTREAM_TLS)
            exact, _ = exact_sans(_get(tls, "common_tls_context")) if tls else (set(), [])
            hosts = {
                _socket(_get(_get(lb, "endpoint"), "address"))[0].split(".", 1)[0]
                for group in as_list(_get(_get(cluster, "load_assignment"), "endpoints"))
                for lb in as_list(_get(group, "lb_endpoints"))
            }
            for name in {_spiffe_name(i) for i in exact} | hosts:
                calls.setdefault(name, set()).add(urn)
    for urn, (service, task_definition, _bootstrap) in bootstraps.items():
        me = _mesh_name(model, service)
        accepted = accepts.get(urn)
        if not accepted:
            continue  # no inbound listener (a call fails closed), or one restricting nobody (reported itself)
        callers = {n for n in (_mesh_name(model, model.by_urn[c]) for c in calls.get(me or "", set())) if n}
        for name in sorted(accepted - callers):
            if name not in model.identities and not complete:
                continue  # a service whose sidecar cannot be read may be that caller
            why = "declares no call to it" if name in model.identities else "is no service of this stack"
            yield Finding(
                f"service '{service.name}': its Envoy accepts the caller '{name}', which {why}; the callers it "
                "accepts (RBAC principals and SAN matchers) must be exactly the services that call it.",
                task_definition.urn,
            )
        for name in sorted(callers - accepted):
            yield Finding(
                f"service '{service.name}': service '{name}' calls it (an outbound cluster verifying its identity) "
                "but its Envoy does not accept that caller; declare the caller on both sides or remove the call.",
                task_definition.urn,
            )


def _sidecar(
    model: AccessModel,
    service: StackResource,
    task_definitions: Sequence[StackResource],
    config: Config,
    bootstraps: Bootstraps,
) -> Iterator[tuple[bool, Finding]]:
    """(is it the "no inbound listener" finding, finding) for one service's task definitions."""
    if not task_definitions:
        yield (
            False,
            Finding(
                f"service '{service.name}': its component declares no {TASK_DEFINITION}, so its Envoy sidecar "
                "cannot be verified.",
                service.urn,
            ),
        )
    for task_definition in task_definitions:
        bootstrap, problem = model.bootstrap_of(task_definition)
        if problem is not None:
            yield False, Finding(f"service '{service.name}': {problem}", task_definition.urn)
            continue
        bootstraps[service.urn] = (service, task_definition, bootstrap)
        for message in check_bootstrap(
            bootstrap,
            mesh_port=int(config["meshPort"]),
            edge_port=int(config["edgePort"]),
            has_callers=True,
        ):
            no_listener = "has no inbound mTLS listener" in message
            yield no_listener, Finding(f"service '{service.name}': {message}", task_definition.urn)


def _load_balancing(ecs_service: StackResource, edge_port: int) -> Iterator[Finding]:
    """A load balancer reaches a service only over HTTPS to the `envoy` container's edge port."""
    owner = service_owner(ecs_service)
    name = owner.name if owner is not None else ecs_service.name
    for entry in as_list(ecs_service.props.get("loadBalancers")):
        entry = mapping(entry)
        port, container = number(entry.get("containerPort")), entry.get("containerName")
        if container != SIDECAR or port != edge_port:
            yield Finding(
                f"service '{name}': ECS service '{ecs_service.name}' registers container '{container}' port "
                f"{int(port) if port is not None else '?'} with a load balancer; only the '{SIDECAR}' container's "
                f"edge port {edge_port} may be a target (the app port must stay behind the sidecar).",
                ecs_service.urn,
            )
    for group in property_deps(ecs_service, "loadBalancers", TARGET_GROUP):
        protocol, port = str(group.props.get("protocol") or "").upper(), number(group.props.get("port"))
        if protocol != "HTTPS" or (port is not None and port != edge_port):
            yield Finding(
                f"service '{name}': target group '{group.name}' sends {protocol or 'HTTP'} to port "
                f"{int(port) if port is not None else '?'}; a load balancer reaches a service only over HTTPS to the "
                f"Envoy edge port {edge_port}.",
                group.urn,
            )


def _transit(resource: StackResource) -> Iterator[Finding]:
    props = resource.props
    if resource.resource_type == CACHE_REPLICATION_GROUP:
        mode = props.get("transitEncryptionMode")
        if not truthy(props.get("transitEncryptionEnabled")) or str(mode or "").lower() != "required":
            yield Finding(
                f"ElastiCache replication group '{resource.name}' does not require TLS (transitEncryptionEnabled "
                f"{props.get('transitEncryptionEnabled')!s}, transitEncryptionMode {mode or 'unset'}); set "
                "transitEncryptionMode 'required' so that no client connects in plaintext.",
                resource.urn,
            )
    elif resource.resource_type == SNS_SUBSCRIPTION:
        protocol = str(props.get("protocol") or "")
        if protocol.lower() == "http":
            yield Finding(
                f"SNS subscription '{resource.name}' delivers over plain HTTP to {props.get('endpoint')}; use https.",
                resource.urn,
            )


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
    model = model_of(resources, config)
    mesh_port, edge_port = int(config["meshPort"]), int(config["edgePort"])
    deferred = Deferred()
    task_definitions: dict[str, list[StackResource]] = {}
    for r in resources:
        owner = service_owner(r) if r.resource_type == TASK_DEFINITION else None
        if owner is not None:
            task_definitions.setdefault(owner.urn, []).append(r)
    services = [r for r in resources if r.resource_type == FARGATE_SERVICE]
    # Bootstraps first (whom each service accepts), then the security groups against them.
    bootstraps: Bootstraps = {}
    sidecars: dict[str, list[tuple[bool, Finding]]] = {}
    for service in services:
        try:
            sidecars[service.urn] = list(
                _sidecar(model, service, task_definitions.get(service.urn, []), config, bootstraps)
            )
        except UnknownValueError as error:
            deferred.error = deferred.error or error
    accepts = _call_graph(model, bootstraps, mesh_port)
    balancers = _load_balancer_groups(model)
    called: set[str] = set()
    yield from deferred.each(
        model.edges, lambda e: _east_west(model, e, (mesh_port, edge_port), called, accepts, balancers)
    )
    for service in services:
        for no_listener, finding in sidecars.get(service.urn, []):
            if no_listener and service.urn not in called:
                continue  # nobody may reach its mesh port: a closed port needs no listener
            yield finding
    yield from _callers_match(model, bootstraps, accepts, complete=len(bootstraps) == len(services))
    ecs_services = [r for r in resources if r.resource_type == ECS_SERVICE]
    yield from deferred.each(ecs_services, lambda s: _service_connect(s, mesh_port))
    yield from deferred.each(ecs_services, lambda s: _load_balancing(s, edge_port))
    yield from deferred.each(
        (r for r in resources if r.resource_type in (CACHE_REPLICATION_GROUP, SNS_SUBSCRIPTION)), _transit
    )
    if model.unknown is not None:
        deferred.error = deferred.error or model.unknown
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
    model=shared_model,
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
