"""The Envoy sidecar of the mTLS mesh: bootstrap, workload certificate parameters, authorization rule.

Pure functions and frozen dataclasses only: nothing here declares a Pulumi resource, so the
FargateMicroservice and ServiceMesh components call these with plain values (or inside `apply()`)
and the tests exercise them without mocks.

How one service takes part in the mesh (see ARCHITECTURE.md, "The service mesh and mTLS"):

* Identity. The mesh CA issues each service one certificate whose URI SAN is its SPIFFE id
  (`spiffe://<trust-domain>/<env>/<service>`); `certificate_parameters()` says exactly what to
  request. The chain, the key and the CA bundle live in ONE Secrets Manager secret per service
  (a JSON document, see `mesh_secret_document()`), injected by ECS `secrets` into the sidecar as the
  environment variables `MESH_CERT_CHAIN`, `MESH_PRIVATE_KEY` and `MESH_CA_BUNDLE`
  (`mesh_secrets()` builds those entries). Envoy reads them with its `environment_variable`
  DataSource, so no key is ever written to the container's disk and the image needs no entrypoint
  script. The price: ECS resolves secrets when a task starts, so a renewed certificate reaches
  Envoy only through a new deployment; the component must roll the service when the cert changes.
* Inbound (`MESH_PORT`, 0.0.0.0). TLS 1.3, client certificate required, chain verified against the
  mesh CA only, and the client's URI SAN must be one of the allowed callers' SPIFFE ids: once in
  the TLS validation context (a stranger fails the handshake) and again in an HTTP RBAC filter whose
  single ALLOW policy lists exactly those ids (defense in depth, and a logged 403 if the two ever
  drift). `authorize_peer()` is the same rule in Python. A service that no one may call gets NO
  inbound mesh listener at all rather than a deny-all one: a closed port cannot be misconfigured,
  it needs no security group rule, and adding a caller to a spec adds the listener.
* Outbound (one per upstream, 127.0.0.1 only). The app speaks plain HTTP to
  `http://127.0.0.1:<outbound_port>`; Envoy originates mTLS to `<upstream>.<namespace>:MESH_PORT`
  (Cloud Map DNS, STRICT_DNS so every task IP is its own host for load balancing and outlier
  detection), presents the service's own certificate, sends SNI = the upstream's DNS name and
  accepts the server only if its URI SAN is exactly the upstream's SPIFFE id
  (`verify_upstream_peer()` is that rule in Python). Sidecar to sidecar is HTTP/2.
* Edge (`EDGE_PORT`, 0.0.0.0, public services only). TLS with the service's certificate and no
  client certificate: the ALB does not present one (it also does not verify target certificates).
  Only the load balancer's security group may reach this port.
* Operations. Admin on 127.0.0.1:`ADMIN_PORT` only; ECS probes its `/ready`
  (`envoy_container_health_check()`). Access logs are JSON lines on stdout (X-Amzn-Trace-Id and
  x-request-id for correlation, the peer's SPIFFE id for audit); Envoy's own log is JSON too.
  Clusters carry timeouts, circuit breakers and (for upstreams) outlier detection.

The bootstrap avoids every field Envoy marks deprecated, and the tests parse it strictly into
Envoy's own protobuf messages (xds-protos), so a typo or a removed field fails CI, not a deployment.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

# --------------------------------------------------------------------------------------------------
# Port plan (all containers of an awsvpc task share one network namespace, so these are reserved
# for the sidecar and an app may not listen on them).
# --------------------------------------------------------------------------------------------------
MESH_PORT: Final = 15443
"""Inbound mTLS listener (0.0.0.0) that other services' sidecars call. Open only to callers' SGs."""
EDGE_PORT: Final = 15444
"""TLS listener (0.0.0.0) for the load balancer, public services only. Target group: HTTPS to this."""
ADMIN_ADDRESS: Final = "127.0.0.1"
ADMIN_PORT: Final = 9901
"""Envoy admin, bound to 127.0.0.1: never reachable from outside the task."""
OUTBOUND_BASE_PORT: Final = 15001
"""First 127.0.0.1 port for outbound listeners; upstream i (sorted by name) gets base + i."""
MAX_UPSTREAMS: Final = 100
"""Outbound ports are OUTBOUND_BASE_PORT .. OUTBOUND_BASE_PORT + MAX_UPSTREAMS - 1 (15001-15100)."""
RESERVED_PORTS: Final = frozenset(
    {MESH_PORT, EDGE_PORT, ADMIN_PORT, *range(OUTBOUND_BASE_PORT, OUTBOUND_BASE_PORT + MAX_UPSTREAMS)}
)
"""Ports the sidecar may bind; an app port must be none of them."""

# --------------------------------------------------------------------------------------------------
# Where the workload certificate reaches Envoy.
# --------------------------------------------------------------------------------------------------
CERT_CHAIN_ENV: Final = "MESH_CERT_CHAIN"
"""PEM: the workload certificate first, then any intermediates up to (not including) the root."""
PRIVATE_KEY_ENV: Final = "MESH_PRIVATE_KEY"
"""PEM: the workload private key."""
CA_BUNDLE_ENV: Final = "MESH_CA_BUNDLE"
"""PEM: the mesh CA certificate(s) to trust; during a CA rotation, old and new."""
MESH_SECRET_JSON_KEYS: Final[Mapping[str, str]] = {
    CERT_CHAIN_ENV: "certificate_chain",
    PRIVATE_KEY_ENV: "private_key",
    CA_BUNDLE_ENV: "ca_bundle",
}
"""Sidecar environment variable -> key in the service's mesh secret (a JSON document)."""

# --------------------------------------------------------------------------------------------------
# Tunables shared by every sidecar.
# --------------------------------------------------------------------------------------------------
REQUEST_TIMEOUT: Final = "15s"
"""Whole-request timeout on every route (inbound, outbound, edge)."""
UPSTREAM_CONNECT_TIMEOUT: Final = "2s"
LOCAL_CONNECT_TIMEOUT: Final = "1s"
LOCAL_APP_IDLE_TIMEOUT: Final = "4s"
"""Below common app keep-alive defaults (Node.js: 5 s), so Envoy never reuses a socket the app closes."""
MESH_IDLE_TIMEOUT: Final = "60s"
"""Client-side idle timeout toward other sidecars, below their downstream idle timeout (300 s)."""
MAX_DOWNSTREAM_CONNECTIONS: Final = 10_000
DRAIN_TIME_SECONDS: Final = 20
"""`--drain-time-s`: how long Envoy drains its inbound listeners (tells HTTP/1 clients `Connection:
close`, HTTP/2 clients GOAWAY) before it stops; shifting traffic then drops no in-flight request."""
DRAIN_STRATEGY: Final = "gradual"
"""`--drain-strategy`: `gradual` spreads the connection closes over the drain time."""
HCM_DRAIN_TIMEOUT: Final = "5s"
"""HttpConnectionManager `drain_timeout`: grace between HTTP/2's shutdown notice and the final GOAWAY."""
STOP_TIMEOUT_SECONDS: Final = DRAIN_TIME_SECONDS + 10
"""ECS `stopTimeout` of the sidecar: the drain plus time to exit before SIGKILL (Fargate allows 120)."""
CIRCUIT_BREAKER_THRESHOLDS: Final[Mapping[str, int]] = {
    "max_connections": 1024,
    "max_pending_requests": 1024,
    "max_requests": 1024,
    "max_retries": 3,
}

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

_TYPE = "type.googleapis.com/"
_HCM = _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = _TYPE + "envoy.extensions.filters.http.router.v3.Router"
_RBAC = _TYPE + "envoy.extensions.filters.http.rbac.v3.RBAC"
_DOWNSTREAM_TLS = _TYPE + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
_UPSTREAM_TLS = _TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_STDOUT_LOG = _TYPE + "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
_HTTP_OPTIONS = _TYPE + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_MAX_CONNECTIONS = _TYPE + "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"

_DOWNSTREAM_HTTP2: Final[Mapping[str, Any]] = {
    # Envoy's edge best-practice values: bound per-stream and per-connection buffering.
    "max_concurrent_streams": 100,
    "initial_stream_window_size": 65536,
    "initial_connection_window_size": 1048576,
}

# Sidecar to sidecar is TLS 1.3 only. The maximum must be explicit: Envoy's default maximum for
# CLIENT contexts is TLS 1.2, which with a 1.3 minimum would leave no usable version outbound.
_MESH_TLS_PARAMS: Final[Mapping[str, str]] = {
    "tls_minimum_protocol_version": "TLSv1_3",
    "tls_maximum_protocol_version": "TLSv1_3",
}

LOCAL_APP_CLUSTER: Final = "local_app"
INBOUND_LISTENER: Final = "inbound_mesh"
EDGE_LISTENER: Final = "edge"
RBAC_POLICY: Final = "allowed-callers"


# --------------------------------------------------------------------------------------------------
# The service's view of the mesh.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeshServiceView:
    """What one service's sidecar needs to know about the mesh. Validated on construction.

    Lists are kept in the order given (they are coerced to tuples); duplicates, the service itself,
    and an app port the sidecar reserves are rejected with a ValueError naming the field.
    """

    service: str
    """The service name (a DNS label, e.g. `order`)."""
    environment: str
    """The stack / environment (`dev`, `staging`, `prod`)."""
    trust_domain: str
    """SPIFFE trust domain, e.g. `microservices.internal`."""
    namespace: str
    """Cloud Map private DNS namespace of the environment, e.g. `dev.microservices.internal`."""
    app_port: int
    """Port the app container listens on; the sidecar forwards to 127.0.0.1:app_port."""
    allowed_callers: tuple[str, ...] = ()
    """Services allowed to call this one through the mesh (inverse of their `calls`)."""
    upstreams: tuple[str, ...] = ()
    """Services this one calls (its spec's `calls`)."""
    public: bool = False
    """True if the load balancer routes internet traffic to this service (edge listener)."""

    def __post_init__(self) -> None:
        for attr in ("allowed_callers", "upstreams"):
            value = getattr(self, attr)
            if isinstance(value, str):
                raise ValueError(f"{attr} must be a sequence of service names, not the string {value!r}")
            object.__setattr__(self, attr, tuple(value))
        _check_name("service", self.service)
        _check_name("environment", self.environment)
        if not _DNS_NAME.match(self.trust_domain):
            raise ValueError(f"trust_domain {self.trust_domain!r} is not a lowercase DNS name")
        if not _DNS_NAME.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} is not a lowercase DNS name")
        if isinstance(self.app_port, bool) or not isinstance(self.app_port, int):
            raise ValueError(f"app_port must be an int, got {self.app_port!r}")
        if not 1024 <= self.app_port <= 65535:
            raise ValueError(f"app_port {self.app_port} must be between 1024 and 65535")
        if self.app_port in RESERVED_PORTS:
            raise ValueError(
                f"app_port {self.app_port} is reserved for the Envoy sidecar (mesh {MESH_PORT}, edge "
                f"{EDGE_PORT}, admin {ADMIN_PORT}, outbound {OUTBOUND_BASE_PORT}-"
                f"{OUTBOUND_BASE_PORT + MAX_UPSTREAMS - 1})"
            )
        for attr in ("allowed_callers", "upstreams"):
            names: tuple[str, ...] = getattr(self, attr)
            for name in names:
                _check_name(attr, name)
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{attr} lists {', '.join(duplicates)} more than once")
            if self.service in names:
                raise ValueError(f"{attr} of {self.service!r} must not contain the service itself")
        if len(self.upstreams) > MAX_UPSTREAMS:
            raise ValueError(f"upstreams: at most {MAX_UPSTREAMS} are supported, got {len(self.upstreams)}")
        if not isinstance(self.public, bool):
            raise ValueError(f"public must be a bool, got {self.public!r}")

    @property
    def identity(self) -> str:
        """This service's own SPIFFE id."""
        return spiffe_id(self.trust_domain, self.environment, self.service)

    @property
    def caller_identities(self) -> frozenset[str]:
        """The SPIFFE ids the inbound listener admits (and nothing else)."""
        return frozenset(spiffe_id(self.trust_domain, self.environment, c) for c in self.allowed_callers)


def _check_name(field: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{field}: {value!r} is not a lowercase DNS label (a-z, 0-9, '-')")


def spiffe_id(trust_domain: str, environment: str, service: str) -> str:
    """The workload's SPIFFE id: `spiffe://<trust-domain>/<env>/<service>`."""
    return f"spiffe://{trust_domain}/{environment}/{service}"


def discovery_dns_name(service: str, namespace: str) -> str:
    """The Cloud Map DNS name other tasks resolve: `<service>.<namespace>`."""
    return f"{service}.{namespace}"


def outbound_port(view: MeshServiceView, upstream: str) -> int:
    """The 127.0.0.1 port on which the app reaches `upstream` through its sidecar.

    Stable: the position of `upstream` in the SORTED upstream list, so the order a spec lists its
    calls in does not matter. Raises KeyError for a service that is not a declared upstream.
    """
    ordered = sorted(view.upstreams)
    if upstream not in ordered:
        raise KeyError(f"{upstream!r} is not an upstream of {view.service!r} (declared: {ordered})")
    return OUTBOUND_BASE_PORT + ordered.index(upstream)


def upstream_urls(view: MeshServiceView) -> dict[str, str]:
    """Plain environment variables for the APP container: `<UPSTREAM>_SERVICE_URL` -> local listener.

    For example `{"INVENTORY_SERVICE_URL": "http://127.0.0.1:15001"}`. Not secret: plain `environment`.
    """
    return {
        f"{u.upper().replace('-', '_')}_SERVICE_URL": f"http://127.0.0.1:{outbound_port(view, u)}"
        for u in sorted(view.upstreams)
    }


# --------------------------------------------------------------------------------------------------
# Authorization rules, in Python, mirroring what the bootstrap tells Envoy.
# --------------------------------------------------------------------------------------------------
def authorize_peer(peer_uri_sans: Iterable[str], view: MeshServiceView) -> bool:
    """Would the inbound listener of `view` admit a client (already verified against the mesh CA)
    presenting these URI SANs?

    Mirrors the bootstrap: the TLS validation context's `match_typed_subject_alt_names` and the RBAC
    policy's `authenticated.principal_name.exact` entries both accept a peer when ANY of its URI SANs
    equals an allowed caller's SPIFFE id exactly (no prefix, case or trailing-slash tolerance). A
    service with no allowed callers admits no one (it has no inbound listener at all).
    """
    allowed = view.caller_identities
    return any(uri in allowed for uri in peer_uri_sans)


def verify_upstream_peer(peer_uri_sans: Iterable[str], view: MeshServiceView, upstream: str) -> bool:
    """Would `view`'s outbound cluster for `upstream` accept a server presenting these URI SANs?

    Mirrors the cluster's validation context: exactly the upstream's SPIFFE id, nothing else.
    """
    if upstream not in view.upstreams:
        raise KeyError(f"{upstream!r} is not an upstream of {view.service!r}")
    expected = spiffe_id(view.trust_domain, view.environment, upstream)
    return any(uri == expected for uri in peer_uri_sans)


# --------------------------------------------------------------------------------------------------
# The Envoy bootstrap.
# --------------------------------------------------------------------------------------------------
def build_bootstrap(view: MeshServiceView) -> dict[str, Any]:
    """The Envoy v3 bootstrap for `view`'s sidecar, as a JSON-able dict (static resources only).

    Listeners: `inbound_mesh` (only if the service has allowed callers), `edge` (only if public),
    and `outbound_<upstream>` per upstream. Clusters: `local_app` and `upstream_<upstream>`.
    """
    listeners: list[dict[str, Any]] = []
    if view.allowed_callers:
        listeners.append(_inbound_listener(view))
    if view.public:
        listeners.append(_edge_listener(view))
    clusters: list[dict[str, Any]] = [_local_app_cluster(view)]
    for upstream in sorted(view.upstreams):
        listeners.append(_outbound_listener(view, upstream))
        clusters.append(_upstream_cluster(view, upstream))
    return {
        "node": {"id": f"{view.environment}.{view.service}", "cluster": view.service},
        "admin": {"address": _socket(ADMIN_ADDRESS, ADMIN_PORT)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _MAX_CONNECTIONS,
                        "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
        "application_log_config": {
            "log_format": {
                "json_format": {
                    "time": "%Y-%m-%dT%T.%eZ",
                    "level": "%l",
                    "logger": "%n",
                    "message": "%j",
                    "service": view.service,
                    "environment": view.environment,
                    "source": "envoy",
                }
            }
        },
    }


def envoy_command(view: MeshServiceView) -> list[str]:
    """The sidecar container's `command`: Envoy's arguments (see `envoy_entry_point`, which runs it).

    `--config-yaml` takes JSON (JSON is YAML), so the whole bootstrap travels in the task definition
    and no config file or custom image is needed. Compact JSON keeps the task definition well under
    ECS's 64 KiB. `--drain-time-s` and `--drain-strategy` shape the graceful drain on stop.
    """
    return [
        "--config-yaml",
        json.dumps(build_bootstrap(view), sort_keys=True, separators=(",", ":")),
        "--drain-time-s",
        str(DRAIN_TIME_SECONDS),
        "--drain-strategy",
        DRAIN_STRATEGY,
    ]


def envoy_drain_script(*, admin_port: int = ADMIN_PORT, drain_seconds: int = DRAIN_TIME_SECONDS) -> str:
    """Bash that runs `envoy "$@"` and, on SIGTERM, drains before stopping it.

    Envoy exits at once on SIGTERM; only a hot restart or the admin endpoint `POST
    /drain_listeners?graceful` starts a graceful drain (Envoy docs, "Draining"; admin API). So on SIGTERM
    (ECS stopping the task, after the ALB deregistered it) this asks the admin interface to drain the
    INBOUND listeners (`inboundonly`: the app's loopback listeners keep working while it finishes its own
    calls), waits the drain time, then sends Envoy SIGTERM. The image has bash but no curl
    (envoyproxy/envoy#31614), so the request goes over bash's /dev/tcp like the health check.
    `admin_port` and `drain_seconds` have other values only in tests."""
    request = (
        f"POST /drain_listeners?graceful&inboundonly HTTP/1.1\\r\\nHost: {ADMIN_ADDRESS}\\r\\n"
        "Content-Length: 0\\r\\nConnection: close\\r\\n\\r\\n"
    )
    return (
        'envoy "$@" & pid=$!; '
        f"drain() {{ exec 3<>/dev/tcp/{ADMIN_ADDRESS}/{admin_port} && printf '{request}' >&3 && head -n 1 <&3; "
        f'sleep {drain_seconds}; kill -TERM "$pid"; }}; '
        'trap drain TERM INT; wait "$pid"; trap - TERM INT; wait "$pid"'
    )


def envoy_entry_point() -> list[str]:
    """The sidecar's ECS `entryPoint`: bash running `envoy_drain_script()` with the `command` as "$@"."""
    return ["/bin/bash", "-c", envoy_drain_script(), "envoy-sidecar"]


def envoy_container_health_check(*, admin_port: int = ADMIN_PORT) -> list[str]:
    """The ECS `healthCheck.command` for the sidecar: HTTP GET /ready on the admin interface.

    The official Envoy image ships neither curl nor wget (envoyproxy/envoy#31614), but it has bash,
    so the probe speaks HTTP/1.1 over bash's /dev/tcp and passes only on a `200` status line
    (`/ready` answers 503 until Envoy is LIVE). Use the `envoyproxy/envoy` image, not `-distroless`.
    `admin_port` defaults to the port the bootstrap uses; other values exist for tests.
    Suggested timing: interval 5, timeout 2, retries 3, startPeriod 10; the app container should
    `dependsOn` the sidecar with condition HEALTHY (ECS then also stops the app first).
    """
    script = (
        f"exec 3<>/dev/tcp/{ADMIN_ADDRESS}/{admin_port}"
        f" && printf 'GET /ready HTTP/1.1\\r\\nHost: {ADMIN_ADDRESS}\\r\\nConnection: close\\r\\n\\r\\n' >&3"
        " && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"
    )
    return ["CMD", "bash", "-c", script]


def mesh_secrets(secret_arn: str) -> list[dict[str, str]]:
    """The sidecar container's ECS `secrets` entries, one JSON key of the service's mesh secret each.

    `secret_arn` is the full ARN of the secret written with `mesh_secret_document()` (call this inside
    `Output.apply`). The task's EXECUTION role needs `secretsmanager:GetSecretValue` on that ARN
    (plus `kms:Decrypt` if the secret uses a customer managed key); the task role needs nothing.
    """
    return [{"name": env, "valueFrom": f"{secret_arn}:{json_key}::"} for env, json_key in MESH_SECRET_JSON_KEYS.items()]


def mesh_secret_document(*, certificate_chain_pem: str, private_key_pem: str, ca_bundle_pem: str) -> str:
    """The SecretString of a service's mesh secret, with the keys `mesh_secrets()` references."""
    values = {
        CERT_CHAIN_ENV: certificate_chain_pem,
        PRIVATE_KEY_ENV: private_key_pem,
        CA_BUNDLE_ENV: ca_bundle_pem,
    }
    return json.dumps({MESH_SECRET_JSON_KEYS[env]: pem for env, pem in values.items()}, sort_keys=True)


# --- listeners -------------------------------------------------------------------------------------
def _inbound_listener(view: MeshServiceView) -> dict[str, Any]:
    callers = sorted(view.caller_identities)
    tls = {
        "@type": _DOWNSTREAM_TLS,
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": dict(_MESH_TLS_PARAMS),
            "tls_certificates": [_workload_certificate()],
            "validation_context": _validation_context(callers),
            "alpn_protocols": ["h2", "http/1.1"],
        },
    }
    rbac_filter = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": _RBAC,
            "rules": {
                "action": "ALLOW",
                "policies": {
                    RBAC_POLICY: {
                        "permissions": [{"any": True}],
                        "principals": [{"authenticated": {"principal_name": {"exact": c}}} for c in callers],
                    }
                },
            },
        },
    }
    hcm = _http_connection_manager(
        view,
        stat_prefix="inbound_mesh",
        direction="inbound",
        cluster=LOCAL_APP_CLUSTER,
        filters=[rbac_filter],
        peer_field="%DOWNSTREAM_PEER_URI_SAN%",
    )
    # Hand the verified caller identity to the app (x-forwarded-client-cert: By=...;URI=spiffe://...),
    # replacing whatever the client sent, so the app can log or refine authorization per caller.
    hcm["forward_client_cert_details"] = "SANITIZE_SET"
    hcm["set_current_client_cert_details"] = {"uri": True}
    hcm["http2_protocol_options"] = dict(_DOWNSTREAM_HTTP2)
    return _listener(INBOUND_LISTENER, "0.0.0.0", MESH_PORT, hcm, tls)


def _edge_listener(view: MeshServiceView) -> dict[str, Any]:
    tls = {
        "@type": _DOWNSTREAM_TLS,
        "require_client_certificate": False,
        "common_tls_context": {
            # TLS 1.2 at least (the ALB's backend connections), modern AEAD ECDHE suites only.
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_2",
                "tls_maximum_protocol_version": "TLSv1_3",
                "cipher_suites": [
                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "ECDHE-RSA-AES128-GCM-SHA256",
                    "ECDHE-ECDSA-AES256-GCM-SHA384",
                    "ECDHE-RSA-AES256-GCM-SHA384",
                    "ECDHE-ECDSA-CHACHA20-POLY1305",
                    "ECDHE-RSA-CHACHA20-POLY1305",
                ],
            },
            "tls_certificates": [_workload_certificate()],
            "alpn_protocols": ["h2", "http/1.1"],
        },
    }
    hcm = _http_connection_manager(
        view,
        stat_prefix="edge",
        direction="edge",
        cluster=LOCAL_APP_CLUSTER,
        filters=[],
        peer_field="%DOWNSTREAM_PEER_URI_SAN%",
    )
    # Requests from the internet are EXTERNAL: with the real peer (the ALB) as remote address and only
    # loopback counted as internal, Envoy strips client-sent x-envoy-* headers (which could otherwise
    # stretch timeouts or ask for retries) and issues a fresh x-request-id.
    hcm["use_remote_address"] = True
    hcm["internal_address_config"] = {"cidr_ranges": [{"address_prefix": "127.0.0.1", "prefix_len": 32}]}
    hcm["http2_protocol_options"] = dict(_DOWNSTREAM_HTTP2)
    return _listener(EDGE_LISTENER, "0.0.0.0", EDGE_PORT, hcm, tls)


def _outbound_listener(view: MeshServiceView, upstream: str) -> dict[str, Any]:
    hcm = _http_connection_manager(
        view,
        stat_prefix=f"outbound_{upstream}",
        direction="outbound",
        cluster=f"upstream_{upstream}",
        filters=[],
        peer_field="%UPSTREAM_PEER_URI_SAN%",
        host_rewrite=discovery_dns_name(upstream, view.namespace),
    )
    # Plaintext, but only on loopback: the app in the same task is the only possible client.
    return _listener(f"outbound_{upstream}", "127.0.0.1", outbound_port(view, upstream), hcm, None, inbound=False)


def _listener(
    name: str, address: str, port: int, hcm: dict[str, Any], tls: dict[str, Any] | None, *, inbound: bool = True
) -> dict[str, Any]:
    """`traffic_direction` selects what `/drain_listeners?inboundonly` drains (inbound mesh and edge
    listeners, not the app's loopback ones); `drain_type: DEFAULT` drains on that call as well as on
    listener changes."""
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    }
    if tls is not None:
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": tls}
    return {
        "name": name,
        "address": _socket(address, port),
        "traffic_direction": "INBOUND" if inbound else "OUTBOUND",
        "drain_type": "DEFAULT",
        "per_connection_buffer_limit_bytes": 32768,
        "filter_chains": [chain],
    }


def _http_connection_manager(
    view: MeshServiceView,
    *,
    stat_prefix: str,
    direction: str,
    cluster: str,
    filters: list[dict[str, Any]],
    peer_field: str,
    host_rewrite: str | None = None,
) -> dict[str, Any]:
    route: dict[str, Any] = {"cluster": cluster, "timeout": REQUEST_TIMEOUT}
    if host_rewrite is not None:
        route["host_rewrite_literal"] = host_rewrite
        # Retry only what never reached the upstream app, so a POST is never applied twice.
        route["retry_policy"] = {"retry_on": "connect-failure,refused-stream", "num_retries": 2}
    return {
        "@type": _HCM,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "normalize_path": True,
        "merge_slashes": True,
        "request_headers_timeout": "10s",
        "drain_timeout": HCM_DRAIN_TIMEOUT,
        "stream_idle_timeout": "300s",
        "common_http_protocol_options": {
            "idle_timeout": "300s",
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        "access_log": [_access_log(view, direction, peer_field)],
        "route_config": {
            "name": stat_prefix,
            "virtual_hosts": [
                {
                    "name": stat_prefix,
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": route}],
                }
            ],
        },
        "http_filters": [
            *filters,
            {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}},
        ],
    }


def _access_log(view: MeshServiceView, direction: str, peer_field: str) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": _STDOUT_LOG,
            "log_format": {
                "json_format": {
                    "time": "%START_TIME%",
                    "service": view.service,
                    "environment": view.environment,
                    "direction": direction,
                    "trace_id": "%REQ(X-AMZN-TRACE-ID)%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "authority": "%REQ(:AUTHORITY)%",
                    "protocol": "%PROTOCOL%",
                    "status": "%RESPONSE_CODE%",
                    "response_flags": "%RESPONSE_FLAGS%",
                    "duration_ms": "%DURATION%",
                    "bytes_received": "%BYTES_RECEIVED%",
                    "bytes_sent": "%BYTES_SENT%",
                    "peer_identity": peer_field,
                    "upstream_host": "%UPSTREAM_HOST%",
                    "downstream_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
                    "forwarded_for": "%REQ(X-FORWARDED-FOR)%",
                    "user_agent": "%REQ(USER-AGENT)%",
                }
            },
        },
    }


# --- clusters --------------------------------------------------------------------------------------
def _local_app_cluster(view: MeshServiceView) -> dict[str, Any]:
    return {
        "name": LOCAL_APP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": LOCAL_CONNECT_TIMEOUT,
        "per_connection_buffer_limit_bytes": 32768,
        "circuit_breakers": _circuit_breakers(),
        "typed_extension_protocol_options": _http_options(LOCAL_APP_IDLE_TIMEOUT, http2=False),
        "load_assignment": _endpoints(LOCAL_APP_CLUSTER, "127.0.0.1", view.app_port),
    }


def _upstream_cluster(view: MeshServiceView, upstream: str) -> dict[str, Any]:
    name = f"upstream_{upstream}"
    dns_name = discovery_dns_name(upstream, view.namespace)
    tls = {
        "@type": _UPSTREAM_TLS,
        "sni": dns_name,
        "common_tls_context": {
            "tls_params": dict(_MESH_TLS_PARAMS),
            "tls_certificates": [_workload_certificate()],
            "validation_context": _validation_context([spiffe_id(view.trust_domain, view.environment, upstream)]),
            "alpn_protocols": ["h2"],
        },
    }
    return {
        "name": name,
        # STRICT_DNS: Cloud Map answers with one A record per healthy task; each becomes a host, so
        # load balancing and outlier detection work per task (LOGICAL_DNS would pin the first IP).
        # The default 5 s DNS refresh is used: Envoy deprecated the per-cluster dns_* knobs.
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_ONLY",
        "lb_policy": "LEAST_REQUEST",
        "connect_timeout": UPSTREAM_CONNECT_TIMEOUT,
        "per_connection_buffer_limit_bytes": 32768,
        "circuit_breakers": _circuit_breakers(),
        "outlier_detection": {
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 5,
            "interval": "10s",
            "base_ejection_time": "30s",
            "max_ejection_time": "300s",
            "max_ejection_percent": 50,
        },
        "typed_extension_protocol_options": _http_options(MESH_IDLE_TIMEOUT, http2=True),
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
        "load_assignment": _endpoints(name, dns_name, MESH_PORT),
    }


def _circuit_breakers() -> dict[str, Any]:
    return {"thresholds": [{"priority": "DEFAULT", **CIRCUIT_BREAKER_THRESHOLDS}]}


def _http_options(idle_timeout: str, *, http2: bool) -> dict[str, Any]:
    protocol: dict[str, Any] = {"http2_protocol_options": {}} if http2 else {"http_protocol_options": {}}
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": _HTTP_OPTIONS,
            "common_http_protocol_options": {"idle_timeout": idle_timeout},
            "explicit_http_config": protocol,
        }
    }


def _endpoints(cluster: str, address: str, port: int) -> dict[str, Any]:
    return {
        "cluster_name": cluster,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(address, port)}}]}],
    }


# --- TLS material ------------------------------------------------------------------------------------
def _workload_certificate() -> dict[str, Any]:
    return {
        "certificate_chain": {"environment_variable": CERT_CHAIN_ENV},
        "private_key": {"environment_variable": PRIVATE_KEY_ENV},
    }


def _validation_context(allowed_uri_sans: Iterable[str]) -> dict[str, Any]:
    return {
        "trusted_ca": {"environment_variable": CA_BUNDLE_ENV},
        "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": uri}} for uri in allowed_uri_sans],
    }


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


# --------------------------------------------------------------------------------------------------
# The workload certificate the mesh CA must issue.
# --------------------------------------------------------------------------------------------------
DEFAULT_VALIDITY_PERIOD_HOURS: Final = 24 * 30
DEFAULT_EARLY_RENEWAL_HOURS: Final = 24 * 7
ACM_PCA_END_ENTITY_TEMPLATE_ARN: Final = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
"""AWS Private CA template that copies SANs from the CSR and sets exactly the usages below."""


@dataclass(frozen=True)
class CertificateParameters:
    """One service's workload certificate, named after pulumi_tls's arguments.

    `private_key_args()` -> `tls.PrivateKey`, `cert_request_args()` -> `tls.CertRequest`,
    `locally_signed_cert_args()` -> `tls.LocallySignedCert` (self-managed CA). For AWS Private CA,
    sign the same CSR with `ACM_PCA_END_ENTITY_TEMPLATE_ARN` and `validity_period_days` (PCA has no
    hour granularity); its template sets the same key usages.
    """

    common_name: str
    organization: str
    organizational_unit: str
    uris: tuple[str, ...]
    dns_names: tuple[str, ...]
    allowed_uses: tuple[str, ...]
    validity_period_hours: int
    early_renewal_hours: int
    algorithm: str = "ECDSA"
    ecdsa_curve: str = "P256"
    is_ca_certificate: bool = False

    @property
    def subject(self) -> dict[str, str]:
        """`CertRequest.subject` (a `CertRequestSubjectArgsDict`)."""
        return {
            "common_name": self.common_name,
            "organization": self.organization,
            "organizational_unit": self.organizational_unit,
        }

    @property
    def validity_period_days(self) -> int:
        """Validity rounded up to whole days, for AWS Private CA's `validity {type: DAYS}`."""
        return math.ceil(self.validity_period_hours / 24)

    def private_key_args(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "ecdsa_curve": self.ecdsa_curve}

    def cert_request_args(self) -> dict[str, Any]:
        return {"subject": self.subject, "uris": list(self.uris), "dns_names": list(self.dns_names)}

    def locally_signed_cert_args(self) -> dict[str, Any]:
        return {
            "allowed_uses": list(self.allowed_uses),
            "validity_period_hours": self.validity_period_hours,
            "early_renewal_hours": self.early_renewal_hours,
            "is_ca_certificate": self.is_ca_certificate,
        }


def certificate_parameters(
    view: MeshServiceView,
    *,
    validity_period_hours: int = DEFAULT_VALIDITY_PERIOD_HOURS,
    early_renewal_hours: int = DEFAULT_EARLY_RENEWAL_HOURS,
) -> CertificateParameters:
    """What the mesh CA must issue for `view.service` (pass the stack's `mesh.certValidityHours`
    and `mesh.certRenewalHours`).

    Exactly one URI SAN (the SPIFFE id, as an X.509-SVID requires) and one DNS SAN (the Cloud Map
    name, which is also the SNI callers send). Key usages digital_signature + key_encipherment and
    extended key usages server_auth + client_auth: the same certificate serves the inbound and edge
    listeners and authenticates the sidecar as a client (the usage set Istio and SPIRE issue, and
    the one AWS Private CA's EndEntityCertificate/V1 template sets).
    """
    if validity_period_hours < 1:
        raise ValueError(f"validity_period_hours must be positive, got {validity_period_hours}")
    if not 0 <= early_renewal_hours < validity_period_hours:
        raise ValueError(
            f"early_renewal_hours ({early_renewal_hours}) must be at least 0 and less than "
            f"validity_period_hours ({validity_period_hours})"
        )
    return CertificateParameters(
        common_name=view.service,
        organization=view.trust_domain,
        organizational_unit=view.environment,
        uris=(view.identity,),
        dns_names=(discovery_dns_name(view.service, view.namespace),),
        allowed_uses=("digital_signature", "key_encipherment", "server_auth", "client_auth"),
        validity_period_hours=validity_period_hours,
        early_renewal_hours=early_renewal_hours,
    )
