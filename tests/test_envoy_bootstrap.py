"""The Envoy sidecar bootstrap and the workload certificates of the mTLS mesh.

Three layers:
1. Every bootstrap parses STRICTLY into Envoy's own protobuf messages (xds-protos), typed_config
   Any messages included, and uses no field Envoy marks deprecated.
2. Its security properties, read back from the parsed protos: who the inbound RBAC and SAN matchers
   admit, what each outbound cluster verifies, where plaintext may listen.
3. Real mutual-TLS handshakes over 127.0.0.1 with Python's `ssl`, using certificates built from
   `certificate_parameters()` and authorized with `authorize_peer()` / `verify_upstream_peer()`,
   the Python mirrors of the bootstrap's rules (and layer 2 checks the mirror is faithful).
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import inspect
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Envoy protos: importing a module registers its descriptors, which ParseDict needs to resolve the
# `@type` of every typed_config Any. Keep this list in step with the types the bootstrap uses.
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401  (registers the type)
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import (  # noqa: F401  (registers the type)
    downstream_connections_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format, message, message_factory
from validate import validate_pb2

from components.envoy import (
    ADMIN_PORT,
    CA_BUNDLE_ENV,
    CERT_CHAIN_ENV,
    EDGE_PORT,
    MESH_PORT,
    MESH_SECRET_JSON_KEYS,
    OUTBOUND_BASE_PORT,
    PRIVATE_KEY_ENV,
    CertificateParameters,
    MeshServiceView,
    authorize_peer,
    build_bootstrap,
    certificate_parameters,
    discovery_dns_name,
    envoy_command,
    envoy_container_health_check,
    mesh_secret_document,
    mesh_secrets,
    outbound_port,
    spiffe_id,
    upstream_urls,
    verify_upstream_peer,
)

TRUST_DOMAIN = "microservices.internal"
ENV = "dev"
NAMESPACE = "dev.microservices.internal"
IO_TIMEOUT = 5.0


def view(
    service: str,
    *,
    callers: tuple[str, ...] = (),
    upstreams: tuple[str, ...] = (),
    public: bool = False,
    app_port: int = 8080,
) -> MeshServiceView:
    return MeshServiceView(
        service=service,
        environment=ENV,
        trust_domain=TRUST_DOMAIN,
        namespace=NAMESPACE,
        app_port=app_port,
        allowed_callers=callers,
        upstreams=upstreams,
        public=public,
    )


def sid(service: str) -> str:
    return spiffe_id(TRUST_DOMAIN, ENV, service)


MATRIX = {
    "private-no-callers-no-upstreams": view("audit"),
    "private-one-caller": view("payment", callers=("order",)),
    "private-several-callers-several-upstreams": view(
        "inventory", callers=("order", "user", "admin-api"), upstreams=("warehouse", "pricing")
    ),
    "public-no-callers": view("user", public=True, app_port=3000),
    "public-callers-and-upstreams": view(
        "order", callers=("web-bff",), upstreams=("payment", "inventory", "user"), public=True
    ),
}


@pytest.fixture(params=sorted(MATRIX), ids=str)
def any_view(request: pytest.FixtureRequest) -> MeshServiceView:
    return MATRIX[request.param]


# --------------------------------------------------------------------------------------------------
# Helpers: strict parsing and reading typed_config back.
# --------------------------------------------------------------------------------------------------
def parse(bootstrap: dict[str, Any]) -> bootstrap_pb2.Bootstrap:
    return json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap(), ignore_unknown_fields=False)


def unpack_any(value: any_pb2.Any) -> message.Message:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(value.TypeName())
    msg = message_factory.GetMessageClass(descriptor)()
    assert value.Unpack(msg), value.type_url
    return msg


def unpack(value: any_pb2.Any, cls: type[Any]) -> Any:
    msg = cls()
    assert value.Unpack(msg), f"typed_config is {value.type_url}, expected {cls.DESCRIPTOR.full_name}"
    return msg


def listeners(parsed: bootstrap_pb2.Bootstrap) -> dict[str, listener_pb2.Listener]:
    return {lst.name: lst for lst in parsed.static_resources.listeners}


def clusters(parsed: bootstrap_pb2.Bootstrap) -> dict[str, cluster_pb2.Cluster]:
    return {c.name: c for c in parsed.static_resources.clusters}


def downstream_tls(lst: listener_pb2.Listener) -> tls_pb2.DownstreamTlsContext | None:
    (chain,) = lst.filter_chains
    if not chain.HasField("transport_socket"):
        return None
    return unpack(chain.transport_socket.typed_config, tls_pb2.DownstreamTlsContext)


def hcm_of(lst: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager:
    (chain,) = lst.filter_chains
    (network_filter,) = chain.filters
    return unpack(network_filter.typed_config, hcm_pb2.HttpConnectionManager)


def rbac_of(lst: listener_pb2.Listener) -> rbac_pb2.RBAC:
    found = [f for f in hcm_of(lst).http_filters if f.name == "envoy.filters.http.rbac"]
    assert len(found) == 1, f"{lst.name}: expected exactly one RBAC filter, found {len(found)}"
    return unpack(found[0].typed_config, rbac_pb2.RBAC)


def uri_matchers(ctx: common_pb2.CertificateValidationContext) -> list[str]:
    uris = []
    for m in ctx.match_typed_subject_alt_names:
        assert m.san_type == common_pb2.SubjectAltNameMatcher.URI, m
        assert m.matcher.WhichOneof("match_pattern") == "exact", f"SAN matcher must be exact: {m}"
        assert not m.matcher.ignore_case
        uris.append(m.matcher.exact)
    return uris


def deprecated_fields(msg: message.Message, path: str = "") -> Iterator[str]:
    """Every set field (or enum value) that Envoy's protos mark deprecated, through Any messages."""
    if isinstance(msg, any_pb2.Any):
        yield from deprecated_fields(unpack_any(msg), f"{path}<{msg.TypeName()}>")
        return
    for field, value in msg.ListFields():
        where = f"{path}.{field.name}"
        if field.GetOptions().deprecated:
            yield where
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                for key, item in value.items():
                    yield from deprecated_fields(item, f"{where}[{key}]")
            continue
        items = list(value) if field.label == field.LABEL_REPEATED else [value]
        for item in items:
            if field.message_type is not None:
                yield from deprecated_fields(item, where)
            elif field.enum_type is not None and field.enum_type.values_by_number[item].GetOptions().deprecated:
                yield f"{where}={field.enum_type.values_by_number[item].name}"


_NUMERIC_RULES = {"float", "double", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64"}
_NUMERIC_RULES |= {"sfixed32", "sfixed64"}


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _scalar_violations(field: Any, rules: Any, value: Any, where: str) -> Iterator[str]:
    """The protoc-gen-validate rules Envoy enforces when it loads a config (the subset we can hit)."""
    kind = rules.WhichOneof("type")
    if kind is None or kind in ("message", "repeated", "map"):
        return
    r = getattr(rules, kind)
    if kind in _NUMERIC_RULES:
        if isinstance(value, message.Message):  # a wrapper such as UInt32Value carries the rule
            value = value.value
        if getattr(r, "ignore_empty", False) and value == 0:
            return
        for bound, ok in (
            ("const", lambda b: value == b),
            ("lt", lambda b: value < b),
            ("lte", lambda b: value <= b),
            ("gt", lambda b: value > b),
            ("gte", lambda b: value >= b),
        ):
            if r.HasField(bound) and not ok(getattr(r, bound)):
                yield f"{where}={value} violates {bound} {getattr(r, bound)}"
        if list(getattr(r, "in")) and value not in getattr(r, "in"):
            yield f"{where}={value} not in {list(getattr(r, 'in'))}"
        if value in r.not_in:
            yield f"{where}={value} is in not_in"
    elif kind == "string":
        if r.ignore_empty and value == "":
            return
        checks = {
            "min_len": lambda b: len(value) >= b,
            "max_len": lambda b: len(value) <= b,
            "len": lambda b: len(value) == b,
            "min_bytes": lambda b: len(value.encode()) >= b,
            "max_bytes": lambda b: len(value.encode()) <= b,
            "prefix": lambda b: value.startswith(b),
            "suffix": lambda b: value.endswith(b),
            "contains": lambda b: b in value,
            "const": lambda b: value == b,
            "pattern": lambda b: re.search(b, value) is not None,
        }
        for bound, ok in checks.items():
            if r.HasField(bound) and not ok(getattr(r, bound)):
                yield f"{where}={value!r} violates string {bound} {getattr(r, bound)!r}"
        if list(getattr(r, "in")) and value not in getattr(r, "in"):
            yield f"{where}={value!r} not in {list(getattr(r, 'in'))}"
        if value in r.not_in:
            yield f"{where}={value!r} is in not_in"
    elif kind == "enum":
        if r.defined_only and value not in field.enum_type.values_by_number:
            yield f"{where}={value} is not a defined enum value"
        if (list(getattr(r, "in")) and value not in getattr(r, "in")) or value in r.not_in:
            yield f"{where}={value} is excluded by enum in/not_in"
    elif kind == "duration":
        td = value.ToTimedelta()
        for bound, ok in (
            ("lt", lambda b: td < b),
            ("lte", lambda b: td <= b),
            ("gt", lambda b: td > b),
            ("gte", lambda b: td >= b),
        ):
            if r.HasField(bound) and not ok(getattr(r, bound).ToTimedelta()):
                yield f"{where}={td} violates duration {bound}"
    elif kind == "any" and list(getattr(r, "in")) and value.type_url not in getattr(r, "in"):
        yield f"{where} type {value.type_url} not allowed"


def validation_violations(msg: message.Message, path: str = "") -> Iterator[str]:
    """Walk a parsed config the way Envoy's loader does: protoc-gen-validate rules, through Any."""
    if isinstance(msg, any_pb2.Any):
        yield from validation_violations(unpack_any(msg), f"{path}<{msg.TypeName()}>")
        return
    descriptor = msg.DESCRIPTOR
    if descriptor.GetOptions().Extensions[validate_pb2.disabled]:
        return
    for oneof in descriptor.oneofs:
        if oneof.GetOptions().Extensions[validate_pb2.required] and msg.WhichOneof(oneof.name) is None:
            yield f"{path}: one of oneof {oneof.name} is required"
    for field in descriptor.fields:
        where = f"{path}.{field.name}"
        oneof = field.containing_oneof
        if oneof is not None and msg.WhichOneof(oneof.name) != field.name:
            continue
        rules = field.GetOptions().Extensions[validate_pb2.rules]
        value = getattr(msg, field.name)
        if _is_map(field):
            if rules.map.HasField("min_pairs") and len(value) < rules.map.min_pairs:
                yield f"{where}: fewer than {rules.map.min_pairs} entries"
            if field.message_type.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    yield from validation_violations(item, f"{where}[{key}]")
        elif field.label == field.LABEL_REPEATED:
            if rules.repeated.HasField("min_items") and len(value) < rules.repeated.min_items:
                yield f"{where}: fewer than {rules.repeated.min_items} items"
            if rules.repeated.HasField("max_items") and len(value) > rules.repeated.max_items:
                yield f"{where}: more than {rules.repeated.max_items} items"
            for i, item in enumerate(value):
                yield from _scalar_violations(field, rules.repeated.items, item, f"{where}[{i}]")
                if field.message_type is not None:
                    yield from validation_violations(item, f"{where}[{i}]")
        elif field.message_type is not None:
            kind = rules.WhichOneof("type")
            required = rules.message.required or (kind in ("duration", "any") and getattr(rules, kind).required)
            if not msg.HasField(field.name):
                if required:
                    yield f"{where} is required"
                continue
            yield from _scalar_violations(field, rules, value, where)
            yield from validation_violations(value, where)
        else:
            yield from _scalar_violations(field, rules, value, where)


# --------------------------------------------------------------------------------------------------
# 1. Strict parsing.
# --------------------------------------------------------------------------------------------------
def test_bootstrap_parses_strictly_into_envoy_protos(any_view: MeshServiceView) -> None:
    parsed = parse(build_bootstrap(any_view))
    # Every Any resolves to a registered message type (not just a type_url string).
    for lst in parsed.static_resources.listeners:
        for chain in lst.filter_chains:
            for f in chain.filters:
                unpack_any(f.typed_config)
            if chain.HasField("transport_socket"):
                unpack_any(chain.transport_socket.typed_config)
    for cluster in parsed.static_resources.clusters:
        for options in cluster.typed_extension_protocol_options.values():
            unpack(options, http_protocol_options_pb2.HttpProtocolOptions)


def test_strict_parsing_catches_a_misspelled_field() -> None:
    """The harness itself must fail on a typo deep inside a typed_config, or test 1 proves nothing."""
    bootstrap = build_bootstrap(MATRIX["private-one-caller"])
    (inbound,) = [lst for lst in bootstrap["static_resources"]["listeners"] if lst["name"] == "inbound_mesh"]
    inbound["filter_chains"][0]["transport_socket"]["typed_config"]["require_client_certs"] = True
    with pytest.raises(json_format.ParseError, match="require_client_certs"):
        parse(bootstrap)


def test_bootstrap_uses_no_deprecated_envoy_field(any_view: MeshServiceView) -> None:
    assert list(deprecated_fields(parse(build_bootstrap(any_view)))) == []


def test_deprecation_harness_catches_a_deprecated_field() -> None:
    bootstrap = build_bootstrap(MATRIX["public-callers-and-upstreams"])
    upstream = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"].startswith("upstream_"))
    upstream["dns_refresh_rate"] = "5s"
    assert [f for f in deprecated_fields(parse(bootstrap)) if f.endswith(".dns_refresh_rate")]


def test_bootstrap_satisfies_envoys_field_validation_rules(any_view: MeshServiceView) -> None:
    assert list(validation_violations(parse(build_bootstrap(any_view)))) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["admin", "address", "socket_address", "port_value"], 70000, "port_value=70000 violates lte 65535"),
        (["static_resources", "clusters", 0, "connect_timeout"], "0s", "connect_timeout=0:00:00 violates duration gt"),
        (["static_resources", "clusters", 0, "name"], "", "name='' violates string min_len"),
        (["static_resources", "clusters", 0, "load_assignment", "cluster_name"], "", "cluster_name='' violates"),
    ],
)
def test_field_validation_harness_catches_what_envoy_would_reject(path: list[Any], value: Any, expected: str) -> None:
    """The rule checker itself must fire, or the test above proves nothing."""
    bootstrap: Any = build_bootstrap(MATRIX["private-one-caller"])
    node = bootstrap
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    violations = list(validation_violations(parse(bootstrap)))
    assert any(expected in v for v in violations), violations


def test_bootstrap_for_every_catalog_service_parses() -> None:
    """The real service specs: callers are the inverse of `calls`, ports from the specs."""
    from services import discover_specs

    specs = [s for s in discover_specs() if s.kind == "fargate"]
    assert specs, "no fargate service specs found"
    for spec in specs:
        callers = tuple(sorted(s.name for s in specs if spec.name in s.calls))
        v = view(spec.name, callers=callers, upstreams=spec.calls, public=spec.is_public, app_port=spec.container_port)
        parsed = parse(build_bootstrap(v))
        assert len(parsed.static_resources.listeners) == bool(callers) + spec.is_public + len(spec.calls), spec.name
        assert list(validation_violations(parsed)) == [], spec.name
        assert list(deprecated_fields(parsed)) == [], spec.name


# --------------------------------------------------------------------------------------------------
# 2. Security properties read back from the parsed protos.
# --------------------------------------------------------------------------------------------------
def test_admin_binds_loopback_only(any_view: MeshServiceView) -> None:
    admin = parse(build_bootstrap(any_view)).admin.address.socket_address
    assert (admin.address, admin.port_value) == ("127.0.0.1", ADMIN_PORT)


def test_no_listener_outside_loopback_without_tls(any_view: MeshServiceView) -> None:
    for name, lst in listeners(parse(build_bootstrap(any_view))).items():
        address = lst.address.socket_address
        if address.address == "127.0.0.1":
            assert name.startswith("outbound_"), f"{name}: only outbound listeners may be loopback plaintext"
            assert OUTBOUND_BASE_PORT <= address.port_value < MESH_PORT, name
            continue
        assert address.port_value in (MESH_PORT, EDGE_PORT), f"{name} listens on {address}"
        tls = downstream_tls(lst)
        assert tls is not None, f"{name} listens on {address.address}:{address.port_value} without TLS"
        assert tls.common_tls_context.tls_certificates, name


def test_tls_versions_are_explicit_and_mesh_traffic_is_tls13_only(any_view: MeshServiceView) -> None:
    parsed = parse(build_bootstrap(any_view))
    contexts: dict[str, Any] = {}
    for name, lst in listeners(parsed).items():
        tls = downstream_tls(lst)
        if tls is not None:
            contexts[name] = tls.common_tls_context.tls_params
    for name, cluster in clusters(parsed).items():
        if cluster.HasField("transport_socket"):
            tls = unpack(cluster.transport_socket.typed_config, tls_pb2.UpstreamTlsContext)
            contexts[name] = tls.common_tls_context.tls_params
    v13, v12 = common_pb2.TlsParameters.TLSv1_3, common_pb2.TlsParameters.TLSv1_2
    for name, params in contexts.items():
        # Envoy's default maximum for client contexts is TLS 1.2: never rely on defaults here.
        versions = (params.tls_minimum_protocol_version, params.tls_maximum_protocol_version)
        assert versions == ((v12, v13) if name == "edge" else (v13, v13)), name
    upstream_clusters = {n for n in clusters(parsed) if n != "local_app"}
    tls_listeners = {n for n in listeners(parsed) if not n.startswith("outbound_")}
    assert set(contexts) == upstream_clusters | tls_listeners


@pytest.mark.parametrize("name", ["private-one-caller", "private-several-callers-several-upstreams"])
def test_inbound_rbac_admits_exactly_the_declared_callers(name: str) -> None:
    v = MATRIX[name]
    rbac = rbac_of(listeners(parse(build_bootstrap(v)))["inbound_mesh"])
    assert rbac.rules.action == rbac_config_pb2.RBAC.ALLOW
    (policy,) = rbac.rules.policies.values()
    assert [p.WhichOneof("rule") for p in policy.permissions] == ["any"]
    principals = set()
    for principal in policy.principals:
        assert principal.WhichOneof("identifier") == "authenticated", principal
        matcher = principal.authenticated.principal_name
        assert matcher.WhichOneof("match_pattern") == "exact" and not matcher.ignore_case, principal
        principals.add(matcher.exact)
    assert principals == {sid(c) for c in v.allowed_callers}
    assert len(policy.principals) == len(v.allowed_callers)
    for outsider in ("notification", v.service, *v.upstreams):
        assert sid(outsider) not in principals
    # The Python mirror agrees with the proto, caller by caller.
    for caller in v.allowed_callers:
        assert authorize_peer([sid(caller)], v)
    assert not authorize_peer([sid("notification")], v)


@pytest.mark.parametrize("name", ["private-one-caller", "public-callers-and-upstreams"])
def test_inbound_tls_requires_a_mesh_client_certificate_with_a_caller_san(name: str) -> None:
    v = MATRIX[name]
    lst = listeners(parse(build_bootstrap(v)))["inbound_mesh"]
    assert (lst.address.socket_address.address, lst.address.socket_address.port_value) == ("0.0.0.0", MESH_PORT)
    tls = downstream_tls(lst)
    assert tls is not None
    assert tls.require_client_certificate.value is True
    common = tls.common_tls_context
    assert common.validation_context.trusted_ca.environment_variable == CA_BUNDLE_ENV
    assert not common.validation_context.allow_expired_certificate
    assert set(uri_matchers(common.validation_context)) == {sid(c) for c in v.allowed_callers}
    (cert,) = common.tls_certificates
    assert cert.certificate_chain.environment_variable == CERT_CHAIN_ENV
    assert cert.private_key.environment_variable == PRIVATE_KEY_ENV
    # The verified caller identity reaches the app, replacing anything the client sent.
    hcm = hcm_of(lst)
    assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.SANITIZE_SET
    assert hcm.set_current_client_cert_details.uri
    assert [r.route.cluster for r in hcm.route_config.virtual_hosts[0].routes] == ["local_app"]


@pytest.mark.parametrize("name", ["private-no-callers-no-upstreams", "public-no-callers"])
def test_a_service_nobody_may_call_has_no_inbound_mesh_listener(name: str) -> None:
    v = MATRIX[name]
    parsed = listeners(parse(build_bootstrap(v)))
    assert "inbound_mesh" not in parsed
    assert all(lst.address.socket_address.port_value != MESH_PORT for lst in parsed.values())
    assert not authorize_peer([sid(s) for s in ("order", "user", "payment", v.service)], v)


def test_outbound_clusters_originate_mtls_and_verify_exactly_the_upstream_san() -> None:
    v = MATRIX["public-callers-and-upstreams"]
    parsed = parse(build_bootstrap(v))
    by_name, all_clusters = listeners(parsed), clusters(parsed)
    assert set(all_clusters) == {"local_app"} | {f"upstream_{u}" for u in v.upstreams}
    for upstream in v.upstreams:
        lst = by_name[f"outbound_{upstream}"]
        address = lst.address.socket_address
        assert (address.address, address.port_value) == ("127.0.0.1", outbound_port(v, upstream))
        (route,) = hcm_of(lst).route_config.virtual_hosts[0].routes
        assert route.route.cluster == f"upstream_{upstream}"
        assert route.route.host_rewrite_literal == discovery_dns_name(upstream, NAMESPACE)

        cluster = all_clusters[f"upstream_{upstream}"]
        assert cluster.type == cluster_pb2.Cluster.STRICT_DNS
        (endpoint,) = [e.endpoint for group in cluster.load_assignment.endpoints for e in group.lb_endpoints]
        target = endpoint.address.socket_address
        assert (target.address, target.port_value) == (f"{upstream}.{NAMESPACE}", MESH_PORT)
        tls = unpack(cluster.transport_socket.typed_config, tls_pb2.UpstreamTlsContext)
        assert tls.sni == f"{upstream}.{NAMESPACE}"
        common = tls.common_tls_context
        assert common.validation_context.trusted_ca.environment_variable == CA_BUNDLE_ENV
        assert uri_matchers(common.validation_context) == [sid(upstream)]
        (cert,) = common.tls_certificates
        assert cert.certificate_chain.environment_variable == CERT_CHAIN_ENV
        assert cert.private_key.environment_variable == PRIVATE_KEY_ENV
        # The Python mirror agrees: exactly this SAN, not a sibling's.
        assert verify_upstream_peer([sid(upstream)], v, upstream)
        for other in {*v.upstreams, v.service} - {upstream}:
            assert not verify_upstream_peer([sid(other)], v, upstream)


def test_edge_listener_exists_only_for_public_services_and_needs_no_client_cert(any_view: MeshServiceView) -> None:
    parsed = listeners(parse(build_bootstrap(any_view)))
    if not any_view.public:
        assert "edge" not in parsed
        return
    edge = parsed["edge"]
    assert (edge.address.socket_address.address, edge.address.socket_address.port_value) == ("0.0.0.0", EDGE_PORT)
    tls = downstream_tls(edge)
    assert tls is not None
    assert not tls.require_client_certificate.value
    (cert,) = tls.common_tls_context.tls_certificates
    assert cert.certificate_chain.environment_variable == CERT_CHAIN_ENV
    hcm = hcm_of(edge)
    assert [r.route.cluster for r in hcm.route_config.virtual_hosts[0].routes] == ["local_app"]
    # Internet requests count as external, so Envoy strips client-sent x-envoy-* control headers.
    assert hcm.use_remote_address.value is True
    internal = [(c.address_prefix, c.prefix_len.value) for c in hcm.internal_address_config.cidr_ranges]
    assert internal == [("127.0.0.1", 32)]
    assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.SANITIZE


def test_local_app_cluster_targets_the_app_port_on_loopback(any_view: MeshServiceView) -> None:
    local = clusters(parse(build_bootstrap(any_view)))["local_app"]
    assert local.type == cluster_pb2.Cluster.STATIC
    (endpoint,) = [e.endpoint for group in local.load_assignment.endpoints for e in group.lb_endpoints]
    assert (endpoint.address.socket_address.address, endpoint.address.socket_address.port_value) == (
        "127.0.0.1",
        any_view.app_port,
    )


def test_clusters_have_timeouts_circuit_breakers_and_outlier_detection(any_view: MeshServiceView) -> None:
    for name, cluster in clusters(parse(build_bootstrap(any_view))).items():
        assert 0 < cluster.connect_timeout.ToTimedelta().total_seconds() <= 5, name
        (threshold,) = cluster.circuit_breakers.thresholds
        for limit in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
            assert threshold.HasField(limit), f"{name}: circuit breaker {limit} not set"
        if name.startswith("upstream_"):
            assert cluster.outlier_detection.consecutive_5xx.value > 0, name
            assert 0 < cluster.outlier_detection.max_ejection_percent.value <= 50, name


def test_every_route_has_a_timeout_and_every_http_listener_logs_json_with_trace_ids(
    any_view: MeshServiceView,
) -> None:
    for name, lst in listeners(parse(build_bootstrap(any_view))).items():
        hcm = hcm_of(lst)
        assert hcm.request_headers_timeout.ToTimedelta().total_seconds() > 0, name
        for vhost in hcm.route_config.virtual_hosts:
            for route in vhost.routes:
                assert route.route.timeout.ToTimedelta().total_seconds() > 0, name
        (log,) = hcm.access_log
        stdout = unpack(log.typed_config, stream_pb2.StdoutAccessLog)
        fields = json_format.MessageToDict(stdout.log_format.json_format)
        assert fields["trace_id"] == "%REQ(X-AMZN-TRACE-ID)%", name
        assert fields["request_id"] == "%REQ(X-REQUEST-ID)%", name
        assert fields["service"] == any_view.service, name
        assert hcm.http_filters[-1].name == "envoy.filters.http.router", name


def test_certificates_come_only_from_the_three_mesh_environment_variables(any_view: MeshServiceView) -> None:
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in ("filename", "inline_string", "inline_bytes"), "no key material on disk/inline"
                if key == "environment_variable":
                    seen.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(build_bootstrap(any_view))
    v = any_view
    presents_cert = bool(v.allowed_callers or v.upstreams or v.public)
    verifies_peers = bool(v.allowed_callers or v.upstreams)
    expected = ({CERT_CHAIN_ENV, PRIVATE_KEY_ENV} if presents_cert else set()) | (
        {CA_BUNDLE_ENV} if verifies_peers else set()
    )
    assert seen == expected
    secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev/mesh/order-AbCdEf"
    entries = mesh_secrets(secret_arn)
    assert {e["name"] for e in entries} == set(MESH_SECRET_JSON_KEYS) >= seen
    document = json.loads(mesh_secret_document(certificate_chain_pem="C", private_key_pem="K", ca_bundle_pem="A"))
    for entry in entries:
        arn, json_key, stage, version = entry["valueFrom"].rsplit(":", 3)
        assert (arn, stage, version) == (secret_arn, "", "")
        assert json_key in document
    by_env = {env: document[key] for env, key in MESH_SECRET_JSON_KEYS.items()}
    assert by_env == {CERT_CHAIN_ENV: "C", PRIVATE_KEY_ENV: "K", CA_BUNDLE_ENV: "A"}


def test_envoy_command_carries_the_bootstrap_and_fits_a_task_definition() -> None:
    big = view(
        "hub",
        callers=tuple(f"caller-{i:02d}" for i in range(10)),
        upstreams=tuple(f"dep-{i:02d}" for i in range(10)),
        public=True,
    )
    command = envoy_command(big)
    assert command[0] == "--config-yaml"
    assert json.loads(command[1]) == build_bootstrap(big)
    # ECS caps a whole task definition at 64 KiB; leave room for the app and tracing containers.
    assert len(command[1].encode()) < 48 * 1024


# --------------------------------------------------------------------------------------------------
# The view, ports and helpers.
# --------------------------------------------------------------------------------------------------
def test_outbound_ports_are_stable_and_independent_of_declaration_order() -> None:
    a = view("order", upstreams=("user", "payment", "inventory"))
    b = view("order", upstreams=("inventory", "user", "payment"))
    ports = {u: outbound_port(a, u) for u in a.upstreams}
    assert ports == {"inventory": OUTBOUND_BASE_PORT, "payment": OUTBOUND_BASE_PORT + 1, "user": OUTBOUND_BASE_PORT + 2}
    assert ports == {u: outbound_port(b, u) for u in b.upstreams}
    assert build_bootstrap(a) == build_bootstrap(b)
    # A new upstream sorting last moves nobody else.
    c = view("order", upstreams=(*a.upstreams, "zebra"))
    assert {u: outbound_port(c, u) for u in a.upstreams} == ports
    with pytest.raises(KeyError, match="billing"):
        outbound_port(a, "billing")
    assert upstream_urls(a) == {
        "INVENTORY_SERVICE_URL": f"http://127.0.0.1:{OUTBOUND_BASE_PORT}",
        "PAYMENT_SERVICE_URL": f"http://127.0.0.1:{OUTBOUND_BASE_PORT + 1}",
        "USER_SERVICE_URL": f"http://127.0.0.1:{OUTBOUND_BASE_PORT + 2}",
    }


def test_identity_names() -> None:
    assert spiffe_id("microservices.internal", "prod", "order") == "spiffe://microservices.internal/prod/order"
    assert discovery_dns_name("order", "prod.microservices.internal") == "order.prod.microservices.internal"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"service": "Order"}, "service"),
        ({"environment": "dev/x"}, "environment"),
        ({"trust_domain": "spiffe://x"}, "trust_domain"),
        ({"namespace": "Dev.Internal"}, "namespace"),
        ({"app_port": MESH_PORT}, "reserved"),
        ({"app_port": ADMIN_PORT}, "reserved"),
        ({"app_port": OUTBOUND_BASE_PORT + 5}, "reserved"),
        ({"app_port": 80}, "between 1024"),
        ({"allowed_callers": ("user", "user")}, "more than once"),
        ({"allowed_callers": ("order",)}, "itself"),
        ({"upstreams": ("order",)}, "itself"),
        ({"upstreams": "payment"}, "not the string"),
        ({"upstreams": ("Pay_ment",)}, "upstreams"),
        ({"upstreams": tuple(f"s{i:03d}" for i in range(101))}, "at most 100"),
    ],
)
def test_view_rejects_bad_values_naming_the_field(changes: dict[str, Any], message: str) -> None:
    base = {
        "service": "order",
        "environment": ENV,
        "trust_domain": TRUST_DOMAIN,
        "namespace": NAMESPACE,
        "app_port": 8080,
    }
    with pytest.raises(ValueError, match=message):
        MeshServiceView(**{**base, **changes})


def test_view_coerces_lists_to_tuples_and_stays_frozen() -> None:
    v = MeshServiceView(
        service="order",
        environment=ENV,
        trust_domain=TRUST_DOMAIN,
        namespace=NAMESPACE,
        app_port=8080,
        allowed_callers=["user"],  # type: ignore[arg-type]
        upstreams=["payment"],  # type: ignore[arg-type]
    )
    assert v.allowed_callers == ("user",) and v.upstreams == ("payment",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.public = True  # type: ignore[misc]


def test_certificate_parameters_match_the_spiffe_identity_and_pulumi_tls_arguments() -> None:
    import pulumi_tls

    v = MATRIX["public-callers-and-upstreams"]
    params = certificate_parameters(v, validity_period_hours=48, early_renewal_hours=12)
    assert params.uris == (sid("order"),)
    assert params.dns_names == (f"order.{NAMESPACE}",)
    assert params.subject["common_name"] == "order"
    assert set(params.allowed_uses) == {"digital_signature", "key_encipherment", "server_auth", "client_auth"}
    assert (params.validity_period_hours, params.early_renewal_hours) == (48, 12)
    assert params.validity_period_days == 2
    assert params.is_ca_certificate is False

    def arg_names(cls: type) -> set[str]:
        return set(inspect.signature(cls).parameters)

    assert set(params.private_key_args()) <= arg_names(pulumi_tls.PrivateKeyArgs)
    assert set(params.cert_request_args()) <= arg_names(pulumi_tls.CertRequestArgs)
    assert set(params.locally_signed_cert_args()) <= arg_names(pulumi_tls.LocallySignedCertArgs)
    assert set(params.subject) <= set(pulumi_tls.CertRequestSubjectArgsDict.__annotations__)
    allowed_uses_doc = inspect.getdoc(pulumi_tls.LocallySignedCertArgs.__init__) or ""
    for use in params.allowed_uses:
        assert f"`{use}`" in allowed_uses_doc, use


@pytest.mark.parametrize(("validity", "renewal"), [(0, 0), (24, 24), (24, -1)])
def test_certificate_parameters_reject_impossible_lifetimes(validity: int, renewal: int) -> None:
    with pytest.raises(ValueError, match="hours"):
        certificate_parameters(
            MATRIX["private-one-caller"], validity_period_hours=validity, early_renewal_hours=renewal
        )


# --------------------------------------------------------------------------------------------------
# The ECS health check command, run for real against a stand-in admin endpoint on 127.0.0.1.
# --------------------------------------------------------------------------------------------------
class _AdminStandIn(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # like Envoy's admin
    ready = True

    def do_GET(self) -> None:
        ok = self.path == "/ready" and self.ready
        body = b"LIVE\n" if ok else b"PRE_INITIALIZING\n"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.skipif(shutil.which("bash") is None, reason="the probe runs in the Envoy image's bash")
@pytest.mark.parametrize(("ready", "healthy"), [(True, True), (False, False)])
def test_health_check_passes_only_when_admin_ready_answers_200(ready: bool, healthy: bool) -> None:
    handler = type("Handler", (_AdminStandIn,), {"ready": ready})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        command = envoy_container_health_check(admin_port=server.server_address[1])
        assert command[:2] == ["CMD", "bash"]
        result = subprocess.run(command[1:], timeout=IO_TIMEOUT, capture_output=True, check=False)
        assert (result.returncode == 0) is healthy, result
    finally:
        server.shutdown()
        server.server_close()
        thread.join(IO_TIMEOUT)


@pytest.mark.skipif(shutil.which("bash") is None, reason="the probe runs in the Envoy image's bash")
def test_health_check_fails_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    command = envoy_container_health_check(admin_port=free_port)
    assert subprocess.run(command[1:], timeout=IO_TIMEOUT, capture_output=True, check=False).returncode != 0
    assert f"/dev/tcp/127.0.0.1/{ADMIN_PORT}" in envoy_container_health_check()[-1]


# --------------------------------------------------------------------------------------------------
# 3. Real mutual TLS over 127.0.0.1.
# --------------------------------------------------------------------------------------------------
_CURVES = {"P256": ec.SECP256R1, "P384": ec.SECP384R1}
_KEY_USAGE_FLAGS = {
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "encipher_only",
    "decipher_only",
}
_EXTENDED_USAGES = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}


@dataclasses.dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue(params: CertificateParameters, ca: Authority, directory: Path, label: str) -> tuple[Path, Path]:
    """Sign a workload certificate exactly as `params` asks (what LocallySignedCert would do)."""
    assert params.algorithm == "ECDSA", params.algorithm
    key = ec.generate_private_key(_CURVES[params.ecdsa_curve]())
    unknown = set(params.allowed_uses) - _KEY_USAGE_FLAGS - set(_EXTENDED_USAGES)
    assert not unknown, f"test CA cannot map allowed_uses {unknown}"
    flags = {flag: flag in params.allowed_uses for flag in _KEY_USAGE_FLAGS}
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, params.subject["common_name"]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, params.subject["organization"]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, params.subject["organizational_unit"]),
        ]
    )
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in params.uris]
    sans += [x509.DNSName(d) for d in params.dns_names]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=params.validity_period_hours))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=params.is_ca_certificate, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(key_cert_sign=False, crl_sign=False, **flags), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    extended = [oid for use, oid in _EXTENDED_USAGES.items() if use in params.allowed_uses]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    cert_path, key_path = directory / f"{label}.crt", directory / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


# The scenario: `inventory` admits only `order`; `order` calls `inventory`.
INVENTORY = view("inventory", callers=("order",))
ORDER = view("order", upstreams=("inventory",))
USER = view("user", upstreams=("inventory",))  # a real mesh member that inventory does not allow
PAYMENT = view("payment", callers=("order",))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pki")
    mesh, rogue = make_ca("mesh-ca-dev"), make_ca("some-other-ca")
    certs = {
        "inventory": issue(certificate_parameters(INVENTORY), mesh, directory, "inventory"),
        "order": issue(certificate_parameters(ORDER), mesh, directory, "order"),
        "user": issue(certificate_parameters(USER), mesh, directory, "user"),
        "payment": issue(certificate_parameters(PAYMENT), mesh, directory, "payment"),
        # Same SPIFFE id as the allowed caller, but signed by a CA the mesh does not trust.
        "rogue-order": issue(certificate_parameters(ORDER), rogue, directory, "rogue-order"),
        "rogue-inventory": issue(certificate_parameters(INVENTORY), rogue, directory, "rogue-inventory"),
        # An allowed caller's identity without the client_auth extended key usage.
        "order-no-client-auth": issue(
            dataclasses.replace(
                certificate_parameters(ORDER),
                allowed_uses=tuple(u for u in certificate_parameters(ORDER).allowed_uses if u != "client_auth"),
            ),
            mesh,
            directory,
            "order-no-client-auth",
        ),
    }
    return {"mesh_ca_pem": mesh.pem, "certs": certs}


def server_context(pki: dict[str, Any], cert: str) -> ssl.SSLContext:
    """What the inbound listener enforces: TLS 1.3, a client certificate chaining to the mesh CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=pki["mesh_ca_pem"])
    ctx.load_cert_chain(*pki["certs"][cert])
    return ctx


def client_context(pki: dict[str, Any], cert: str | None) -> ssl.SSLContext:
    """What an outbound cluster does: trust the mesh CA; the SAN check is `verify_upstream_peer`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # Envoy matches the URI SAN (below), not the DNS name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=pki["mesh_ca_pem"])
    if cert is not None:
        ctx.load_cert_chain(*pki["certs"][cert])
    return ctx


def uri_sans(peer_cert: dict[str, Any] | None) -> list[str]:
    assert peer_cert, "no verified peer certificate"
    return [value for kind, value in peer_cert.get("subjectAltName", ()) if kind == "URI"]


@dataclasses.dataclass
class Exchange:
    server_outcome: str = "no-connection"
    server_error: BaseException | None = None
    server_saw: list[str] = dataclasses.field(default_factory=list)
    client_error: BaseException | None = None
    client_saw: list[str] = dataclasses.field(default_factory=list)
    client_verified_server: bool | None = None
    client_received: bytes = b""


def exchange(server_ctx: ssl.SSLContext, server_view: MeshServiceView, client_ctx: ssl.SSLContext) -> Exchange:
    """One connection over 127.0.0.1: the server authorizes the peer like the inbound RBAC, the client
    checks the server like its outbound cluster for `server_view.service`."""
    result = Exchange()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(IO_TIMEOUT)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError as error:
            result.server_error = error
            return
        with conn:
            conn.settimeout(IO_TIMEOUT)
            try:
                tls = server_ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as error:
                result.server_outcome, result.server_error = "handshake-failed", error
                return
            with tls:
                result.server_saw = uri_sans(tls.getpeercert())
                allowed = authorize_peer(result.server_saw, server_view)
                result.server_outcome = "authorized" if allowed else "denied"
                try:
                    tls.sendall(b"200 from " + server_view.service.encode() if allowed else b"403 RBAC: access denied")
                except (ssl.SSLError, OSError) as error:  # the client hung up (it rejected us)
                    result.server_error = error

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
            sni = discovery_dns_name(server_view.service, NAMESPACE)
            with client_ctx.wrap_socket(raw, server_hostname=sni) as tls:
                result.client_saw = uri_sans(tls.getpeercert())
                result.client_verified_server = verify_upstream_peer(result.client_saw, ORDER, "inventory")
                if result.client_verified_server:
                    result.client_received = tls.recv(1024)
    except (ssl.SSLError, OSError) as error:
        result.client_error = error
    finally:
        thread.join(IO_TIMEOUT)
        listener.close()
    assert not thread.is_alive(), "server thread did not finish within the timeout"
    return result


def test_allowed_caller_with_a_mesh_certificate_is_accepted(pki: dict[str, Any]) -> None:
    result = exchange(server_context(pki, "inventory"), INVENTORY, client_context(pki, "order"))
    assert result.server_outcome == "authorized", result
    assert result.server_saw == [sid("order")]
    assert result.client_saw == [sid("inventory")]
    assert result.client_verified_server is True
    assert result.client_received == b"200 from inventory"


def test_client_certificate_from_another_ca_is_rejected_at_the_handshake(pki: dict[str, Any]) -> None:
    # Its URI SAN is the allowed caller's: only the chain of trust stops it.
    result = exchange(server_context(pki, "inventory"), INVENTORY, client_context(pki, "rogue-order"))
    assert result.server_outcome == "handshake-failed", result
    assert isinstance(result.server_error, ssl.SSLError)
    assert "certificate verify failed" in str(result.server_error)
    assert result.client_received == b""


def test_mesh_certificate_of_a_caller_not_allowed_is_rejected_by_authorization(pki: dict[str, Any]) -> None:
    result = exchange(server_context(pki, "inventory"), INVENTORY, client_context(pki, "user"))
    assert result.server_outcome == "denied", result  # the handshake itself succeeded: same CA
    assert result.server_saw == [sid("user")]
    assert not authorize_peer(result.server_saw, INVENTORY)
    assert result.client_received == b"403 RBAC: access denied"


def test_client_without_a_certificate_is_rejected(pki: dict[str, Any]) -> None:
    result = exchange(server_context(pki, "inventory"), INVENTORY, client_context(pki, None))
    assert result.server_outcome == "handshake-failed", result
    assert isinstance(result.server_error, ssl.SSLError)
    assert "certificate" in str(result.server_error).lower()
    assert result.client_received == b""


def test_client_certificate_without_client_auth_usage_is_rejected(pki: dict[str, Any]) -> None:
    """The extended key usages certificate_parameters asks for are load-bearing."""
    result = exchange(server_context(pki, "inventory"), INVENTORY, client_context(pki, "order-no-client-auth"))
    assert result.server_outcome == "handshake-failed", result
    assert "unsuitable certificate purpose" in str(result.server_error)


def test_client_rejects_a_mesh_server_presenting_another_services_identity(pki: dict[str, Any]) -> None:
    # `payment` holds a perfectly valid mesh certificate, but order dialled inventory.
    result = exchange(server_context(pki, "payment"), INVENTORY, client_context(pki, "order"))
    assert result.client_error is None, result
    assert result.client_saw == [sid("payment")]
    assert result.client_verified_server is False
    assert result.client_received == b"", "the client must not read anything from an unverified server"


def test_client_rejects_a_server_certificate_from_another_ca(pki: dict[str, Any]) -> None:
    result = exchange(server_context(pki, "rogue-inventory"), INVENTORY, client_context(pki, "order"))
    assert isinstance(result.client_error, ssl.SSLCertVerificationError), result
    assert result.client_verified_server is None
    assert result.server_outcome != "authorized"
