"""ServiceMesh: the environment's mTLS mesh (ARCHITECTURE.md, "The service mesh and mTLS").

One per environment. It owns everything a service needs to take part in the mesh except the task
itself, and hands each FargateMicroservice a `MeshAttachment` (the type `components/microservice.py`
defines) to plug in:

* **Discovery.** A Cloud Map private DNS namespace `<env>.<trust-domain>` in the VPC, and per service
  a Cloud Map service `<service>.<namespace>` (A records, TTL 10 s, MULTIVALUE: every healthy task is
  its own answer, which Envoy's STRICT_DNS clusters balance over). Health is custom: ECS reports the
  task's container health (`failure_threshold` 1, see `_discovery`).
* **The mesh CA**, by `mesh.certificateAuthority`:
  - `selfManaged` (cheap dev stacks): an ECDSA P-256 key and a self-signed CA certificate from
    pulumi-tls, valid 10 years, renewed (same key, so every issued certificate stays valid) by the
    first `pulumi up` in its last year. The CA key lives in the Pulumi state as a secret: whoever can
    read the state can mint mesh identities, which is why staging and prod use AWS Private CA.
  - `privateCa`: an AWS Private CA ROOT (EC_prime256v1, SHA256WITHECDSA; the key never leaves AWS's
    HSMs), activated by installing the certificate it issues itself with the RootCACertificate/V1
    template (10 years). No CRL and no OCSP: the Envoy sidecars do not check revocation (their
    validation context has no CRL), so a CRL would cost an S3 bucket and protect nothing; the answer
    to a leaked key is rotation (see below) and short validity. `usage_mode` follows the certificate
    validity: at most 7 days -> SHORT_LIVED_CERTIFICATE, else GENERAL_PURPOSE (`pca_usage_mode`).
    Cost (us-east-1 list prices): a GENERAL_PURPOSE CA is $400 per month plus about $0.75 per
    certificate; a SHORT_LIVED_CERTIFICATE CA is $50 per month plus about $0.06 per certificate, but
    may only issue certificates valid up to 7 days, so `pulumi up` must then run at least every
    `certValidityHours - certRenewalHours`. With the default 30-day certificates staging and prod pay
    $400 a month each; `certValidityHours: 168` with `certRenewalHours: 48` and a daily deployment
    brings that to $50. The mode of an existing CA cannot change: switching replaces the CA (a new
    root of trust), which `protect` blocks in prod until done deliberately.
* **A workload identity per service**: an ECDSA P-256 key, a CSR with exactly the SPIFFE id as URI SAN
  and the Cloud Map name as DNS SAN (`certificate_parameters()` in `components/envoy.py`), signed by
  the mesh CA (pulumi-tls `LocallySignedCert`, or an ACM PCA `Certificate` with the
  EndEntityCertificate/V1 template), stored in ONE Secrets Manager secret per service (certificate
  chain, key and CA bundle as the JSON document `mesh_secret_document()` defines; KMS-encrypted with
  the platform key; its value a Pulumi secret end to end) that only that service's execution role may
  read (its secret policy: `components.wiring.MeshConnections`).
* **Rotation.** pulumi-tls re-issues a self-managed certificate on the first `pulumi up` inside its
  last `certRenewalHours` (`early_renewal_hours`). ACM PCA certificates have no such switch, so the
  component derives a renewal epoch from the clock, `floor(now / (validity - renewal))`, and uses it
  as the `replacement_trigger` of the service's key: the first `pulumi up` of a new epoch re-keys and
  re-issues, when at least `certRenewalHours` of the old certificate remain (same guarantee as
  pulumi-tls; see `renewal_epoch`). `ServiceMeshArgs.rotation` is a keeper for both modes: change it
  to re-key and re-issue every workload certificate now (e.g. after a suspected key leak). ECS reads
  secrets when a task starts, so a new certificate must roll the service: the attachment puts the
  certificate's serial number in the sidecar's plain environment (`MESH_CERT_SERIAL`, not a secret)
  and in `redeploy_triggers`, so a re-issued certificate changes the task definition and forces a new
  deployment.
* **Security groups mirror the call graph.** Only the mesh port, and only from each allowed caller's
  security group (`components.wiring.MeshConnections`); the app port stays closed to everyone but its own
  sidecar (same task), and a public service's load balancer targets the sidecar's TLS edge port.

Whole at construction. The identities exist before the services, but the execution roles and security
groups that must be named are created by the services; those rules and policies are the separate
`components.wiring.MeshConnections`, declared after the services (its resources alias this component,
their first parent):

    mesh = ServiceMesh(prefix, ServiceMeshArgs(...))
    services = {
        name: FargateMicroservice(f"{prefix}-{name}", FargateMicroserviceArgs(
            ...,
            mesh=mesh.attachment_for(name, component_name=f"{prefix}-{name}"),
            alb=AlbAttachment.from_edge(edge.attachment, **mesh.alb_target(name)) if public else None,
        ))
        for name in ...
    }
    MeshConnections(f"{prefix}-mesh", MeshConnectionsArgs(mesh=mesh, security_group_ids=.., execution_role_arns=..))

Allowed callers follow BOTH sides of the call graph: a caller's `calls` and the callee's `accepts`
(`mesh_views`); the catalog refuses a call the callee does not accept, so the two always agree.

ECS Service Connect is deliberately not offered: its TLS is not mutual (no client certificates), so it
could never replace the sidecars, and the policy pack's `mtls-required` rule reports any service that
relies on it ("TLS, not mutual").
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from components.context import PlatformContext
from components.envoy import (
    ACM_PCA_END_ENTITY_TEMPLATE_ARN,
    EDGE_PORT,
    MESH_PORT,
    MeshServiceView,
    certificate_parameters,
    discovery_dns_name,
    envoy_command,
    envoy_container_health_check,
    envoy_entry_point,
    mesh_secret_document,
    mesh_secrets,
    upstream_urls,
)
from components.envoy import (
    STOP_TIMEOUT_SECONDS as ENVOY_STOP_TIMEOUT_SECONDS,
)
from components.microservice import MeshAttachment, log_configuration
from model.config import MeshConfig
from model.errors import ConfigError
from model.spec import ServiceSpec

__all__ = [
    "ENVOY_CONTAINER",
    "ENVOY_IMAGE",
    "MESH_CERT_SERIAL_ENV",
    "MeshIdentity",
    "ServiceMesh",
    "ServiceMeshArgs",
    "certificate_fingerprint",
    "envoy_container",
    "identity_secret_policy",
    "mesh_views",
    "pca_usage_mode",
    "renewal_epoch",
]

ENVOY_CONTAINER: Final = "envoy"
"""The sidecar's container name (the policy pack's `mtls-required` rule looks for exactly this)."""
ENVOY_IMAGE: Final = "public.ecr.aws/envoyproxy/envoy:v1.34-latest"
"""The official Envoy image (not `-distroless`: the health check needs its bash), on ECR Public so
Fargate pulls are not subject to Docker Hub's anonymous rate limit. A minor-version tag takes patch
releases; ECS resolves it to one digest per deployment, so all tasks of a deployment run the same
build. Override with `ServiceMeshArgs.envoy_image` (e.g. a digest, or a pull-through cache)."""
ENVOY_USER: Final = "101"
"""The `envoy` user of the official image: the sidecar binds only unprivileged ports."""
ENVOY_HEALTH_CHECK_TIMING: Final[Mapping[str, int]] = {"interval": 5, "timeout": 2, "retries": 3, "startPeriod": 10}
MESH_CERT_SERIAL_ENV: Final = "MESH_CERT_SERIAL"
"""Plain sidecar environment variable holding the workload certificate's serial number: not a
secret, but it changes the task definition (and so rolls the service) whenever the cert is re-issued."""

CA_VALIDITY_HOURS: Final = 10 * 365 * 24
CA_EARLY_RENEWAL_HOURS: Final = 365 * 24
"""A self-managed CA certificate is re-issued (same key) by the first `pulumi up` in its last year."""
CA_ALLOWED_USES: Final = ("cert_signing", "crl_signing", "digital_signature")
PCA_KEY_ALGORITHM: Final = "EC_prime256v1"
PCA_SIGNING_ALGORITHM: Final = "SHA256WITHECDSA"
PCA_ROOT_TEMPLATE: Final = "RootCACertificate/V1"
PCA_ROOT_VALIDITY_YEARS: Final = 10
SHORT_LIVED_MAX_DAYS: Final = 7
"""AWS Private CA in SHORT_LIVED_CERTIFICATE mode issues certificates valid at most 7 days."""
DISCOVERY_TTL_SECONDS: Final = 10
DEFAULT_ROTATION: Final = "1"

PcaUsageMode = Literal["GENERAL_PURPOSE", "SHORT_LIVED_CERTIFICATE"]


# --------------------------------------------------------------------------------------------------
# Pure helpers (no resources): what the component derives from the specs and the config.
# --------------------------------------------------------------------------------------------------
def mesh_views(catalog: Sequence[ServiceSpec], *, environment: str, trust_domain: str) -> dict[str, MeshServiceView]:
    """Every Fargate service's view of the mesh, by name: its upstreams are its spec's `calls`, its
    allowed callers the services whose `calls` include it. Only Fargate services can run the sidecar,
    so a call from or to any other kind of service is a spec error."""
    namespace = f"{environment}.{trust_domain}"
    fargate = {s.name: s for s in catalog if s.kind == "fargate"}
    for spec in catalog:
        for callee in spec.calls:
            if spec.name not in fargate or callee not in fargate:
                odd = spec if spec.name not in fargate else next(s for s in catalog if s.name == callee)
                raise ConfigError(
                    f"service spec '{spec.name}': calls = {callee!r}: '{odd.name}' is a {odd.kind} service; only "
                    "Fargate services are in the mTLS mesh (call it through its events or its public route instead)"
                )
    return {
        name: MeshServiceView(
            service=name,
            environment=environment,
            trust_domain=trust_domain,
            namespace=namespace,
            app_port=spec.container_port,
            # Both sides of the call graph: callers that call this service AND that it accepts.
            allowed_callers=tuple(
                sorted(c.name for c in fargate.values() if name in c.calls and c.name in spec.accepts)
            ),
            upstreams=spec.calls,
            public=spec.is_public,
        )
        for name, spec in sorted(fargate.items())
    }


def pca_usage_mode(config: MeshConfig) -> PcaUsageMode:
    """SHORT_LIVED_CERTIFICATE when every workload certificate fits in its 7-day limit (validity is
    issued in whole days, rounded up), GENERAL_PURPOSE otherwise. See the module docstring for cost."""
    days = math.ceil(config.cert_validity_hours / 24)
    return "SHORT_LIVED_CERTIFICATE" if days <= SHORT_LIVED_MAX_DAYS else "GENERAL_PURPOSE"


def renewal_epoch(now: datetime, *, validity_hours: int, renewal_hours: int) -> int:
    """The renewal period `now` falls in: `floor(now / (validity - renewal))`, counted from the epoch.

    A certificate issued at any time in epoch k is replaced by the first `pulumi up` in epoch k + 1,
    which starts at most `validity - renewal` hours after it was issued: at least `renewal` hours of
    validity are left when the replacement becomes due (the same promise as pulumi-tls's
    `early_renewal_hours`, and like it, only kept if `pulumi up` runs in that window).
    """
    if not 0 <= renewal_hours < validity_hours:
        raise ValueError(
            f"renewal_hours ({renewal_hours}) must be at least 0 and less than validity ({validity_hours})"
        )
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return math.floor(now.timestamp() / ((validity_hours - renewal_hours) * 3600))


def identity_secret_policy(execution_role_arn: str) -> str:
    """Resource policy of a service's mesh secret: its execution role may read the value, and no other
    principal of any account may, whatever its IAM policies say (an explicit Deny wins). Only
    `GetSecretValue` is denied, so account administrators can still describe, update, rotate and
    delete the secret and change this policy."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ItsExecutionRoleReads",
                    "Effect": "Allow",
                    "Principal": {"AWS": execution_role_arn},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                },
                {
                    "Sid": "NoOneElseReads",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": {"StringNotEquals": {"aws:PrincipalArn": execution_role_arn}},
                },
            ],
        },
        sort_keys=True,
    )


def certificate_fingerprint(pem: str) -> str:
    """`SHA256:AB:CD:...` over the certificate's DER, as `openssl x509 -fingerprint -sha256` prints it."""
    body = "".join(line.strip() for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body + "=" * (-len(body) % 4))
    return "SHA256:" + ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def envoy_container(
    view: MeshServiceView,
    *,
    secret_arn: pulumi.Input[str],
    certificate_serial: pulumi.Input[str],
    log_configuration: Mapping[str, Any],
    image: str = ENVOY_IMAGE,
) -> dict[str, Any]:
    """The sidecar's ECS container definition (camelCase, as in the task definition JSON).

    Values that come from resources (`secrets`, the serial) are Outputs inside the dict:
    `pulumi.Output.json_dumps` of the container list resolves them. The bootstrap travels inline in
    `command`; the workload certificate arrives through `secrets` (env vars Envoy reads directly).
    """
    port_mappings = []
    if view.allowed_callers:
        port_mappings.append({"name": "mesh", "containerPort": MESH_PORT, "protocol": "tcp"})
    if view.public:
        port_mappings.append({"name": "edge", "containerPort": EDGE_PORT, "protocol": "tcp"})
    container: dict[str, Any] = {
        "name": ENVOY_CONTAINER,
        "image": image,
        "essential": True,
        "entryPoint": envoy_entry_point(),
        "command": envoy_command(view),
        # Covers the graceful drain that the entry point runs on SIGTERM (then SIGKILL).
        "stopTimeout": ENVOY_STOP_TIMEOUT_SECONDS,
        "user": ENVOY_USER,
        "readonlyRootFilesystem": True,
        "portMappings": port_mappings,
        "secrets": pulumi.Output.from_input(secret_arn).apply(mesh_secrets),
        "environment": [{"name": MESH_CERT_SERIAL_ENV, "value": certificate_serial}],
        "healthCheck": {"command": envoy_container_health_check(), **ENVOY_HEALTH_CHECK_TIMING},
        "logConfiguration": dict(log_configuration),
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
    }
    return container


# --------------------------------------------------------------------------------------------------
# Arguments and what the component hands out.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceMeshArgs:
    config: MeshConfig
    catalog: Sequence[ServiceSpec]
    """Every spec; the Fargate ones get an identity, `calls` between them is the call graph."""
    vpc_id: pulumi.Input[str]
    protect: bool = False
    """`protect` the CA (pass `data.protectResources`): destroying or replacing it breaks every identity."""
    rotation: str = DEFAULT_ROTATION
    """Keeper: change it to re-key and re-issue every workload certificate on the next `pulumi up`."""
    now: datetime | None = None
    """Clock for the Private CA renewal epoch (default: the time the program runs)."""
    envoy_image: str = ENVOY_IMAGE


@dataclass(frozen=True)
class MeshIdentity:
    """One service's place in the mesh: what it is, where its certificate is, who may reach it how."""

    view: MeshServiceView
    secret_arn: pulumi.Output[str]
    """The identity secret (chain, key, CA bundle): the execution role needs GetSecretValue + kms:Decrypt."""
    registry_arn: pulumi.Output[str]
    """The Cloud Map service: the ECS service's `service_registries`."""
    certificate_serial: pulumi.Output[str]
    """Serial number of the current workload certificate (changes on every re-issue)."""

    @property
    def service(self) -> str:
        return self.view.service

    @property
    def spiffe_id(self) -> str:
        return self.view.identity

    @property
    def dns_name(self) -> str:
        return discovery_dns_name(self.view.service, self.view.namespace)

    @property
    def mesh_port(self) -> int | None:
        """MESH_PORT when some service may call this one, else None (no inbound mesh listener at all)."""
        return MESH_PORT if self.view.allowed_callers else None

    @property
    def callers(self) -> tuple[str, ...]:
        """Services whose security groups may reach `mesh_port` (and nothing else east-west)."""
        return self.view.allowed_callers

    @property
    def edge_port(self) -> int | None:
        """EDGE_PORT for a public service (its ALB target groups: HTTPS to this port), else None."""
        return EDGE_PORT if self.view.public else None


class ServiceMesh(pulumi.ComponentResource):
    """The environment's mesh: Cloud Map namespace, mesh CA, and one identity + registry per service."""

    namespace_name: str
    namespace_id: pulumi.Output[str]
    namespace_arn: pulumi.Output[str]
    trust_domain: str
    ca_arn: pulumi.Output[str] | None
    """The AWS Private CA (None for a self-managed CA)."""
    ca_certificate_pem: pulumi.Output[str]
    ca_fingerprint: pulumi.Output[str]
    usage_mode: PcaUsageMode | None
    identities: dict[str, MeshIdentity]
    rotation_triggers: dict[str, str]
    """The `replacement_trigger` of each service's workload key: a new value re-keys and re-issues."""
    component_name: str
    """This component's name: the prefix of every child's name (and of `MeshConnections`' resources)."""
    tags: dict[str, str]

    def __init__(
        self, name: str, args: ServiceMeshArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        """`context.key_arn` encrypts the identity secrets; `context.environment` is in every SPIFFE id."""
        # Everything that can be wrong with the config or the call graph fails before any registration.
        config = args.config
        self._context = context
        self._views = mesh_views(args.catalog, environment=context.environment, trust_domain=config.trust_domain)
        super().__init__("microservices:mesh:ServiceMesh", name, None, opts)
        self._name = name
        self._args = args
        self._tags = context.with_tags(Component="mesh")
        self.tags = dict(self._tags)
        self.component_name = name
        self._secrets: dict[str, aws.secretsmanager.Secret] = {}
        self.rotation_triggers = {}
        self.trust_domain = config.trust_domain
        self.namespace_name = f"{self._context.environment}.{config.trust_domain}"

        self._namespace()
        if config.certificate_authority == "privateCa":
            self._private_ca()
        else:
            self._self_managed_ca()
        self.ca_fingerprint = self.ca_certificate_pem.apply(certificate_fingerprint)
        self.identities = {svc: self._identity(view) for svc, view in self._views.items()}

        self.register_outputs(
            {
                "namespaceName": self.namespace_name,
                "namespaceId": self.namespace_id,
                "namespaceArn": self.namespace_arn,
                "trustDomain": self.trust_domain,
                "caArn": self.ca_arn,
                "caFingerprint": self.ca_fingerprint,
                "identitySecretArns": {s: i.secret_arn for s, i in self.identities.items()},
                "registryArns": {s: i.registry_arn for s, i in self.identities.items()},
                "certificateSerials": {s: i.certificate_serial for s, i in self.identities.items()},
            }
        )

    # --- what the services plug in ---------------------------------------------------------------

    def identity(self, service: str) -> MeshIdentity:
        if service not in self.identities:
            raise KeyError(f"{service!r} is not a Fargate service of the mesh (known: {sorted(self.identities)})")
        return self.identities[service]

    def attachment_for(self, service: str, *, component_name: str) -> MeshAttachment:
        """The FargateMicroservice's `mesh=` argument. `component_name` is the microservice component's
        name (e.g. `ms-dev-order`, passed by its builder): the sidecar logs to that component's log group.

        * `sidecars`: the Envoy container (the app `dependsOn` it HEALTHY);
        * `app_environment`: `<UPSTREAM>_SERVICE_URL` per upstream (plain http to 127.0.0.1);
        * `secret_arns`: the identity secret (execution role: GetSecretValue + kms:Decrypt);
        * `registry_arn`: the Cloud Map service (ECS `service_registries`);
        * `redeploy_triggers`: the certificate serial (a re-issued certificate rolls the service).
        Security-group rules are NOT in it: they name other services' groups, which do not exist yet;
        `components.wiring.MeshConnections` declares them after the services.
        """
        identity = self.identity(service)
        component = component_name
        sidecar = envoy_container(
            identity.view,
            secret_arn=identity.secret_arn,
            certificate_serial=identity.certificate_serial,
            log_configuration=log_configuration(component, self._context.region, ENVOY_CONTAINER),
            image=self._args.envoy_image,
        )
        return MeshAttachment(
            sidecars=(sidecar,),
            app_environment=upstream_urls(identity.view),
            secret_arns=(identity.secret_arn,),
            registry_arn=identity.registry_arn,
            redeploy_triggers={"meshCertificateSerial": identity.certificate_serial},
        )

    def alb_target(self, service: str) -> dict[str, Any]:
        """`AlbAttachment` overrides for a public service: the load balancer sends HTTPS to the sidecar's
        edge listener (which terminates TLS with the workload certificate), never to the app port."""
        identity = self.identity(service)
        if identity.edge_port is None:
            raise ValueError(f"{service!r} is not public: it has no edge listener for a load balancer")
        return {"target_port": identity.edge_port, "target_protocol": "HTTPS", "target_container_name": ENVOY_CONTAINER}

    def exports(self) -> dict[str, Any]:
        """Stack outputs: the namespace, the trust domain, the CA (ARN for Private CA) and its fingerprint."""
        exports: dict[str, Any] = {
            "meshNamespace": self.namespace_name,
            "meshTrustDomain": self.trust_domain,
            "meshCaFingerprint": self.ca_fingerprint,
        }
        if self.ca_arn is not None:
            exports["meshCaArn"] = self.ca_arn
        return exports

    # --- resources ---------------------------------------------------------------------------------

    def _namespace(self) -> None:
        namespace = aws.servicediscovery.PrivateDnsNamespace(
            f"{self._name}-namespace",
            name=self.namespace_name,
            vpc=self._args.vpc_id,
            description=f"mTLS mesh discovery of the {self._context.environment} services (<service>.{self.namespace_name})",
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace_id = namespace.id
        self.namespace_arn = namespace.arn

    def _ca_subject(self) -> dict[str, str]:
        """CN `<env> mesh CA`, O the trust domain, OU the environment (each within X.500's 64 characters)."""
        return {
            "common_name": f"{self._context.environment} mesh CA",
            "organization": self.trust_domain,
            "organizational_unit": self._context.environment,
        }

    def _self_managed_ca(self) -> None:
        opts = pulumi.ResourceOptions(parent=self, protect=self._args.protect)
        key = tls.PrivateKey(f"{self._name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
        cert = tls.SelfSignedCert(
            f"{self._name}-ca-cert",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(**self._ca_subject()),
            is_ca_certificate=True,
            allowed_uses=list(CA_ALLOWED_USES),
            validity_period_hours=CA_VALIDITY_HOURS,
            early_renewal_hours=CA_EARLY_RENEWAL_HOURS,
            set_subject_key_id=True,
            opts=opts,
        )
        self._ca_key = key
        self._ca_cert = cert
        self._activation: pulumi.Resource | None = None
        self.ca_arn = None
        self.usage_mode = None
        self.ca_certificate_pem = cert.cert_pem

    def _private_ca(self) -> None:
        args, config = self._args, self._args.config
        opts = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self.usage_mode = pca_usage_mode(config)
        ca = aws.acmpca.CertificateAuthority(
            f"{self._name}-ca",
            type="ROOT",
            usage_mode=self.usage_mode,
            certificate_authority_configuration=aws.acmpca.CertificateAuthorityCertificateAuthorityConfigurationArgs(
                key_algorithm=PCA_KEY_ALGORITHM,
                signing_algorithm=PCA_SIGNING_ALGORITHM,
                subject=aws.acmpca.CertificateAuthorityCertificateAuthorityConfigurationSubjectArgs(
                    **self._ca_subject()
                ),
            ),
            # Sidecars do not check revocation (see the module docstring): no CRL, no OCSP.
            revocation_configuration=aws.acmpca.CertificateAuthorityRevocationConfigurationArgs(
                crl_configuration=aws.acmpca.CertificateAuthorityRevocationConfigurationCrlConfigurationArgs(
                    enabled=False
                )
            ),
            permanent_deletion_time_in_days=30 if args.protect else 7,
            tags=self._tags,
            opts=opts,
        )
        root = aws.acmpca.Certificate(
            f"{self._name}-ca-root-cert",
            certificate_authority_arn=ca.arn,
            certificate_signing_request=ca.certificate_signing_request,
            signing_algorithm=PCA_SIGNING_ALGORITHM,
            template_arn=f"arn:{self._context.partition}:acm-pca:::template/{PCA_ROOT_TEMPLATE}",
            validity={"type": "YEARS", "value": str(PCA_ROOT_VALIDITY_YEARS)},
            opts=opts,
        )
        # A root CA's certificate is installed without a chain (the API rejects one for ROOT).
        self._activation = aws.acmpca.CertificateAuthorityCertificate(
            f"{self._name}-ca-activation",
            certificate_authority_arn=ca.arn,
            certificate=root.certificate,
            opts=opts,
        )
        self._pca = ca
        self.ca_arn = ca.arn
        self.ca_certificate_pem = root.certificate

    def _identity(self, view: MeshServiceView) -> MeshIdentity:
        args, config = self._args, self._args.config
        svc, name = view.service, f"{self._name}-{view.service}"
        params = certificate_parameters(
            view, validity_period_hours=config.cert_validity_hours, early_renewal_hours=config.cert_renewal_hours
        )
        child = pulumi.ResourceOptions(parent=self)
        trigger = args.rotation
        if self.ca_arn is not None:
            now = args.now or datetime.now(UTC)
            epoch = renewal_epoch(
                now,
                validity_hours=params.validity_period_days * 24,
                renewal_hours=config.cert_renewal_hours,
            )
            trigger = f"{args.rotation}/{epoch}"
        self.rotation_triggers[svc] = trigger
        # A new key means a new CSR (every CertRequest input forces replacement) and so a new certificate.
        key = tls.PrivateKey(
            f"{name}-key",
            **params.private_key_args(),
            opts=pulumi.ResourceOptions(parent=self, replacement_trigger=trigger),
        )
        csr = tls.CertRequest(
            f"{name}-csr", private_key_pem=key.private_key_pem, **params.cert_request_args(), opts=child
        )
        chain: pulumi.Output[str]
        serial: pulumi.Output[str]
        if self.ca_arn is None:
            cert = tls.LocallySignedCert(
                f"{name}-cert",
                cert_request_pem=csr.cert_request_pem,
                ca_private_key_pem=self._ca_key.private_key_pem,
                ca_cert_pem=self._ca_cert.cert_pem,
                **params.locally_signed_cert_args(),
                opts=child,
            )
            chain = cert.cert_pem
            serial = cert.id  # pulumi-tls uses the certificate's serial number as the resource id
        else:
            issued = aws.acmpca.Certificate(
                f"{name}-cert",
                certificate_authority_arn=self._pca.arn,
                certificate_signing_request=csr.cert_request_pem,
                signing_algorithm=PCA_SIGNING_ALGORITHM,
                template_arn=ACM_PCA_END_ENTITY_TEMPLATE_ARN.replace("arn:aws:", f"arn:{self._context.partition}:", 1),
                validity={"type": "DAYS", "value": str(params.validity_period_days)},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self._activation] if self._activation else []),
            )
            # Issued directly by the root: the chain is the certificate alone (the root is the CA bundle).
            chain = issued.certificate
            serial = issued.arn.apply(lambda arn: arn.rsplit("/certificate/", 1)[-1])
        secret = aws.secretsmanager.Secret(
            f"{name}-identity",
            name=f"microservices/{self._context.environment}/{svc}/mesh-identity",
            description=(
                f"mTLS workload identity of {svc} ({view.identity}): certificate chain, private key and mesh CA "
                "bundle for its Envoy sidecar. Issued by Pulumi; readable by its ECS execution role only."
            ),
            kms_key_id=self._context.key_arn,
            recovery_window_in_days=30 if args.protect else 7,
            tags={**self._tags, "Service": svc},
            opts=child,
        )
        document: pulumi.Output[str] = pulumi.Output.all(chain, key.private_key_pem, self.ca_certificate_pem).apply(
            lambda pems: mesh_secret_document(
                certificate_chain_pem=pems[0], private_key_pem=pems[1], ca_bundle_pem=pems[2]
            )
        )
        # The private key makes the document a secret already; say so explicitly all the same.
        secret_string: pulumi.Output[str] = pulumi.Output.secret(document)
        aws.secretsmanager.SecretVersion(
            f"{name}-identity", secret_id=secret.id, secret_string=secret_string, opts=child
        )
        self._secrets[svc] = secret
        return MeshIdentity(
            view=view, secret_arn=secret.arn, registry_arn=self._discovery(view), certificate_serial=serial
        )

    def _discovery(self, view: MeshServiceView) -> pulumi.Output[str]:
        service = aws.servicediscovery.Service(
            f"{self._name}-{view.service}-discovery",
            name=view.service,
            description=f"{discovery_dns_name(view.service, view.namespace)}: one A record per healthy task",
            dns_config={
                "namespace_id": self.namespace_id,
                "dns_records": [{"ttl": DISCOVERY_TTL_SECONDS, "type": "A"}],
                "routing_policy": "MULTIVALUE",
            },
            # ECS reports each task's health. AWS ignores failure_threshold now (always 1; Cloud Map API
            # HealthCheckCustomConfig) and the provider marks it deprecated, but an empty block is dropped
            # and the service would be created WITHOUT custom health checks, which ECS service discovery
            # needs (hashicorp/terraform-provider-aws#44285). It stays, at AWS's only value; the
            # preflight lists it as an advisory, not a failure.
            health_check_custom_config={"failure_threshold": 1},
            tags={**self._tags, "Service": view.service},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return service.arn
