"""ServiceMesh: Cloud Map namespace, mesh CA per mode, one workload identity + registry per service, the
Envoy sidecar attachment, the identity secret's resource policy and the east-west security groups.

Stack-level properties are checked on the real dev / staging / prod previews (cached per session);
what the services plug in (`attachment_for`, `alb_target`), the wiring declared after them (`MeshConnections`) and
config the stacks do not set run the component alone under the same recording mocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pytest
from guardrails.mesh import check_bootstrap

from components.cluster import CapacityShare
from components.context import PlatformContext
from components.envoy import (
    ACM_PCA_END_ENTITY_TEMPLATE_ARN,
    EDGE_PORT,
    MESH_PORT,
    build_bootstrap,
    envoy_command,
    envoy_container_health_check,
    mesh_secrets,
    spiffe_id,
    upstream_urls,
)
from components.mesh import (
    CA_ALLOWED_USES,
    CA_EARLY_RENEWAL_HOURS,
    CA_VALIDITY_HOURS,
    ENVOY_CONTAINER,
    ENVOY_IMAGE,
    MESH_CERT_SERIAL_ENV,
    ServiceMesh,
    ServiceMeshArgs,
    certificate_fingerprint,
    identity_secret_policy,
    mesh_views,
    pca_usage_mode,
    renewal_epoch,
)
from components.microservice import FargateMicroservice, FargateMicroserviceArgs, TaskRuntime
from components.wiring import MeshConnections, MeshConnectionsArgs
from model.config import DataConfig, MeshConfig, ServiceSizing
from model.errors import ConfigError
from model.spec import ServiceSpec
from offline.export import SECRET_SIG, SECRET_SIG_KEY
from offline.plan import Plan, PlannedResource
from services import load_catalog
from tests.conftest import children_of, extended_catalog, only, preview, run_component

MESH = "microservices:mesh:ServiceMesh"
NAMESPACE = "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"
DISCOVERY = "aws:servicediscovery/service:Service"
KEY = "tls:index/privateKey:PrivateKey"
CSR = "tls:index/certRequest:CertRequest"
LOCAL_CERT = "tls:index/locallySignedCert:LocallySignedCert"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
PCA = "aws:acmpca/certificateAuthority:CertificateAuthority"
PCA_CERT = "aws:acmpca/certificate:Certificate"
PCA_ACTIVATION = "aws:acmpca/certificateAuthorityCertificate:CertificateAuthorityCertificate"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
VPC = "awsx:ec2:Vpc"
KMS_KEY = "aws:kms/key:Key"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

TRUST_DOMAIN = "microservices.internal"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
ROLE_ARN = "arn:aws:iam::123456789012:role/ms-test-cart-execution"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def named(plan: Plan, type_token: str, name: str) -> PlannedResource:
    matches = [r for r in plan.of_type(type_token) if r.name == name]
    assert len(matches) == 1, f"expected one {type_token} named {name}, got {[r.urn for r in plan.of_type(type_token)]}"
    return matches[0]


def fargate_names(catalog: list[ServiceSpec]) -> list[str]:
    return sorted(s.name for s in catalog if s.kind == "fargate")


# --------------------------------------------------------------------------------------------------
# The real stacks.
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog() -> list[ServiceSpec]:
    return load_catalog()


@pytest.fixture(params=["dev", "staging", "prod"])
def stack(request: pytest.FixtureRequest) -> tuple[str, Plan]:
    return request.param, preview(request.param).plan


def test_one_mesh_per_environment_with_its_namespace_in_the_vpc(stack: tuple[str, Plan]) -> None:
    env, plan = stack
    mesh = only(plan, MESH)
    assert mesh.name == f"ms-{env}", mesh.urn
    namespace = only(plan, NAMESPACE)
    vpc = only(plan, VPC)
    assert namespace.parent == mesh.urn, namespace.urn
    assert namespace.inputs["name"] == f"{env}.{TRUST_DOMAIN}", namespace.urn
    assert namespace.inputs["vpc"] == vpc.outputs["vpcId"], namespace.urn
    assert namespace.property_dependencies["vpc"] == [vpc.urn], namespace.urn
    for child in children_of(plan, mesh.urn):
        assert child.name.startswith(f"ms-{env}-"), f"{child.urn}: children are prefixed with the mesh's name"


def test_dev_signs_with_a_self_managed_pulumi_tls_ca() -> None:
    plan = preview("dev").plan
    assert not plan.of_type(PCA) and not plan.of_type(PCA_CERT), "dev must not pay for an AWS Private CA"
    key = named(plan, KEY, "ms-dev-ca-key")
    assert key.inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"}, key.urn
    assert "privateKeyPem" in key.secret_outputs, key.urn
    ca = named(plan, SELF_SIGNED, "ms-dev-ca-cert")
    i = ca.inputs
    assert i["isCaCertificate"] is True, ca.urn
    assert sorted(i["allowedUses"]) == sorted(CA_ALLOWED_USES), ca.urn
    assert i["validityPeriodHours"] == CA_VALIDITY_HOURS == 10 * 365 * 24, ca.urn
    assert i["earlyRenewalHours"] == CA_EARLY_RENEWAL_HOURS, ca.urn
    assert i["subject"] == {"commonName": "dev mesh CA", "organization": TRUST_DOMAIN, "organizationalUnit": "dev"}
    assert is_secret(i["privateKeyPem"]) and i["privateKeyPem"]["value"] == key.outputs["privateKeyPem"], ca.urn
    assert not ca.protect and not key.protect, f"{ca.urn}: dev does not protect its CA"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_use_an_activated_aws_private_ca_root(env: str) -> None:
    plan = preview(env).plan
    mesh = only(plan, MESH)
    self_managed = [r.urn for r in children_of(plan, mesh.urn) if r.type in (SELF_SIGNED, LOCAL_CERT)]
    assert not self_managed, f"{env}: no self-managed CA, got {self_managed}"
    ca = only(plan, PCA)
    i = ca.inputs
    assert i["type"] == "ROOT", ca.urn
    assert i["usageMode"] == "GENERAL_PURPOSE", f"{ca.urn}: 30-day certificates exceed short-lived mode's 7 days"
    config = i["certificateAuthorityConfiguration"]
    assert config["keyAlgorithm"] == "EC_prime256v1" and config["signingAlgorithm"] == "SHA256WITHECDSA", ca.urn
    assert config["subject"] == {
        "commonName": f"{env} mesh CA",
        "organization": TRUST_DOMAIN,
        "organizationalUnit": env,
    }
    assert i["revocationConfiguration"] == {"crlConfiguration": {"enabled": False}}, ca.urn
    root = named(plan, PCA_CERT, f"ms-{env}-ca-root-cert")
    assert root.inputs["certificateAuthorityArn"] == ca.outputs["arn"], root.urn
    assert root.inputs["certificateSigningRequest"] == ca.outputs["certificateSigningRequest"], root.urn
    assert root.inputs["templateArn"] == "arn:aws:acm-pca:::template/RootCACertificate/V1", root.urn
    assert root.inputs["validity"] == {"type": "YEARS", "value": "10"}, root.urn
    assert root.inputs["signingAlgorithm"] == "SHA256WITHECDSA", root.urn
    activation = only(plan, PCA_ACTIVATION)
    assert activation.inputs == {
        "certificateAuthorityArn": ca.outputs["arn"],
        "certificate": root.outputs["certificate"],
    }
    protected = env == "prod"
    for resource in (ca, root, activation):
        assert resource.protect is protected, f"{resource.urn}: protect={protected} in {env}"
    assert i["permanentDeletionTimeInDays"] == (30 if protected else 7), ca.urn


def test_every_fargate_service_has_exactly_one_key_csr_and_certificate(
    stack: tuple[str, Plan], catalog: list[ServiceSpec]
) -> None:
    env, plan = stack
    names = fargate_names(catalog)
    mesh = only(plan, MESH)
    keys = [r for r in children_of(plan, mesh.urn) if r.type == KEY and r.name != f"ms-{env}-ca-key"]
    assert sorted(r.name for r in keys) == [f"ms-{env}-{s}-key" for s in names], [r.urn for r in keys]
    private_ca = env != "dev"
    for service in names:
        key = named(plan, KEY, f"ms-{env}-{service}-key")
        assert key.inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"}, key.urn
        csr = named(plan, CSR, f"ms-{env}-{service}-csr")
        assert csr.inputs["uris"] == [f"spiffe://{TRUST_DOMAIN}/{env}/{service}"], csr.urn
        assert csr.inputs["dnsNames"] == [f"{service}.{env}.{TRUST_DOMAIN}"], csr.urn
        assert csr.inputs["subject"]["commonName"] == service, csr.urn
        assert is_secret(csr.inputs["privateKeyPem"]), f"{csr.urn}: the key reaches the CSR as a secret"
        assert csr.inputs["privateKeyPem"]["value"] == key.outputs["privateKeyPem"], csr.urn
        if private_ca:
            cert = named(plan, PCA_CERT, f"ms-{env}-{service}-cert")
            assert cert.inputs["certificateSigningRequest"] == csr.outputs["certRequestPem"], cert.urn
            assert cert.inputs["certificateAuthorityArn"] == only(plan, PCA).outputs["arn"], cert.urn
            assert cert.inputs["templateArn"] == ACM_PCA_END_ENTITY_TEMPLATE_ARN, cert.urn
            assert cert.inputs["validity"] == {"type": "DAYS", "value": "30"}, cert.urn
            assert only(plan, PCA_ACTIVATION).urn in cert.dependencies, f"{cert.urn}: issue only once the CA is active"
        else:
            cert = named(plan, LOCAL_CERT, f"ms-{env}-{service}-cert")
            i = cert.inputs
            assert {"client_auth", "server_auth"} <= set(i["allowedUses"]), cert.urn
            assert i["validityPeriodHours"] == 720 and i["earlyRenewalHours"] == 168, cert.urn
            assert i["isCaCertificate"] is False, cert.urn
            assert i["certRequestPem"] == csr.outputs["certRequestPem"], cert.urn
            assert i["caCertPem"] == named(plan, SELF_SIGNED, f"ms-{env}-ca-cert").outputs["certPem"], cert.urn
            assert is_secret(i["caPrivateKeyPem"]), f"{cert.urn}: the CA key must stay a secret"


def test_identity_secret_is_kms_encrypted_and_its_value_stays_secret(
    stack: tuple[str, Plan], catalog: list[ServiceSpec]
) -> None:
    env, plan = stack
    platform_key = only(plan, KMS_KEY)
    ca_pem = (
        named(plan, SELF_SIGNED, f"ms-{env}-ca-cert").outputs["certPem"]
        if env == "dev"
        else named(plan, PCA_CERT, f"ms-{env}-ca-root-cert").outputs["certificate"]
    )
    for service in fargate_names(catalog):
        secret = named(plan, SECRET, f"ms-{env}-{service}-identity")
        assert secret.inputs["name"] == f"microservices/{env}/{service}/mesh-identity", secret.urn
        assert secret.inputs["kmsKeyId"] == platform_key.outputs["arn"], f"{secret.urn}: the platform key"
        assert secret.inputs["recoveryWindowInDays"] == (30 if env == "prod" else 7), secret.urn
        assert spiffe_id(TRUST_DOMAIN, env, service) in secret.inputs["description"], secret.urn
        version = named(plan, SECRET_VERSION, f"ms-{env}-{service}-identity")
        assert version.inputs["secretId"] == secret.id, version.urn
        wire = version.inputs["secretString"]
        assert is_secret(wire), f"{version.urn}: secretString must be a secret in the plan, got {type(wire)}"
        document = json.loads(wire["value"])
        cert = named(plan, LOCAL_CERT if env == "dev" else PCA_CERT, f"ms-{env}-{service}-cert")
        key = named(plan, KEY, f"ms-{env}-{service}-key")
        assert document == {
            "certificate_chain": cert.outputs["certPem" if env == "dev" else "certificate"],
            "private_key": key.outputs["privateKeyPem"],
            "ca_bundle": ca_pem,
        }, version.urn


def test_one_cloud_map_service_per_service_with_ecs_reported_health(
    stack: tuple[str, Plan], catalog: list[ServiceSpec]
) -> None:
    env, plan = stack
    namespace = only(plan, NAMESPACE)
    assert sorted(r.name for r in plan.of_type(DISCOVERY)) == [
        f"ms-{env}-{s}-discovery" for s in fargate_names(catalog)
    ]
    for service in fargate_names(catalog):
        discovery = named(plan, DISCOVERY, f"ms-{env}-{service}-discovery")
        assert discovery.inputs["name"] == service, discovery.urn
        assert discovery.inputs["dnsConfig"] == {
            "namespaceId": namespace.id,
            "dnsRecords": [{"ttl": 10, "type": "A"}],
            "routingPolicy": "MULTIVALUE",
        }, discovery.urn
        assert discovery.inputs["healthCheckCustomConfig"] == {"failureThreshold": 1}, discovery.urn


def test_the_stack_exports_the_mesh(stack: tuple[str, Plan]) -> None:
    env, plan = stack
    outputs = plan.outputs
    assert outputs["meshNamespace"] == f"{env}.{TRUST_DOMAIN}", outputs
    assert outputs["meshTrustDomain"] == TRUST_DOMAIN, outputs
    ca_pem = (
        named(plan, SELF_SIGNED, f"ms-{env}-ca-cert").outputs["certPem"]
        if env == "dev"
        else named(plan, PCA_CERT, f"ms-{env}-ca-root-cert").outputs["certificate"]
    )
    assert outputs["meshCaFingerprint"] == certificate_fingerprint(ca_pem), outputs
    if env == "dev":
        assert "meshCaArn" not in outputs, outputs
    else:
        assert outputs["meshCaArn"] == only(plan, PCA).outputs["arn"], outputs


# --------------------------------------------------------------------------------------------------
# The component alone: a small call graph and the methods the services call.
# --------------------------------------------------------------------------------------------------
CATALOG = [
    ServiceSpec(
        name="web", description="public front", container_port=8080, public_paths=("/web",), calls=("cart", "auth")
    ),
    ServiceSpec(name="cart", description="private", container_port=9000, calls=("auth",), accepts=("web",)),
    ServiceSpec(name="auth", description="private leaf", container_port=8081, accepts=("cart", "web")),
    ServiceSpec(name="mailer", description="a lambda", kind="lambda"),
]


@dataclass
class Run:
    plan: Plan
    mesh: ServiceMesh
    values: dict[str, Any] = field(default_factory=dict)
    """Output values captured during the run (by the `capture` callbacks)."""


def run_mesh(
    config: MeshConfig | None = None,
    *,
    catalog: list[ServiceSpec] | None = None,
    protect: bool = False,
    now: datetime = NOW,
    rotation: str = "1",
    then: Callable[[ServiceMesh, Callable[[str, Any], None]], None] | None = None,
) -> Run:
    """Build a ServiceMesh under the mocks; `then(mesh, capture)` may call its methods and capture
    Output values by name (`capture("x", output)`), which the run resolves."""
    holder: dict[str, Any] = {}
    values: dict[str, Any] = {}

    def capture(key: str, value: Any) -> None:
        pulumi.Output.from_input(value).apply(lambda v: values.__setitem__(key, v))

    def build() -> ServiceMesh:
        mesh = ServiceMesh(
            "ms-test",
            ServiceMeshArgs(
                config=config or MeshConfig(),
                catalog=catalog or CATALOG,
                vpc_id="vpc-0123456789abcdef0",
                protect=protect,
                now=now,
                rotation=rotation,
            ),
            PlatformContext(
                environment="test",
                account_id="123456789012",
                region="us-east-1",
                partition="aws",
                tags={"Project": "microservices"},
            ).with_key(KEY_ARN),
        )
        holder["mesh"] = mesh
        if then is not None:
            then(mesh, capture)
        return mesh

    plan = run_component(build)
    return Run(plan=plan, mesh=holder["mesh"], values=values)


def capture_attachment(service: str) -> Callable[[ServiceMesh, Callable[[str, Any], None]], None]:
    def then(mesh: ServiceMesh, capture: Callable[[str, Any], None]) -> None:
        attachment = mesh.attachment_for(service, component_name=f"ms-test-{service}")
        capture("sidecars", pulumi.Output.json_dumps(list(attachment.sidecars)))
        capture("secret_arns", list(attachment.secret_arns))
        capture("registry_arn", attachment.registry_arn)
        capture("triggers", dict(attachment.redeploy_triggers))
        capture("app_environment", dict(attachment.app_environment))

    return then


def test_views_follow_the_call_graph_and_skip_lambdas() -> None:
    views = mesh_views(CATALOG, environment="test", trust_domain=TRUST_DOMAIN)
    assert sorted(views) == ["auth", "cart", "web"]
    assert views["auth"].allowed_callers == ("cart", "web")
    assert views["cart"].allowed_callers == ("web",) and views["cart"].upstreams == ("auth",)
    assert views["web"].allowed_callers == () and views["web"].public is True
    assert views["cart"].namespace == f"test.{TRUST_DOMAIN}" and views["cart"].app_port == 9000


def test_a_call_to_a_lambda_is_not_a_mesh_call() -> None:
    catalog = [
        *CATALOG[:3],
        ServiceSpec(name="mailer", description="l", kind="lambda"),
        ServiceSpec(name="batch", description="b", calls=("mailer",)),
    ]
    with pytest.raises(ConfigError, match=r"service spec 'batch': calls = 'mailer': 'mailer' is a lambda service"):
        mesh_views(catalog, environment="test", trust_domain=TRUST_DOMAIN)


@pytest.mark.parametrize("variant", ["real", "extended"])
def test_the_real_catalog_graph(variant: str) -> None:
    catalog = load_catalog() if variant == "real" else extended_catalog()
    views = mesh_views(catalog, environment="prod", trust_domain=TRUST_DOMAIN)
    fargate = [s for s in catalog if s.kind == "fargate"]
    assert set(views) == {s.name for s in fargate}
    assert any(s.calls for s in fargate), "the catalogue has calls (else this test checks nothing)"
    for spec in fargate:
        callers = sorted(s.name for s in fargate if spec.name in s.calls)
        assert sorted(views[spec.name].allowed_callers) == callers, spec.name
        assert set(views[spec.name].upstreams) == set(spec.calls), spec.name


@pytest.mark.parametrize("service", ["web", "cart", "auth"])
def test_the_sidecar_container_runs_the_bootstrap_with_the_identity_secret(service: str) -> None:
    run = run_mesh(then=capture_attachment(service))
    plan, view = run.plan, run.mesh.identity(service).view
    (sidecar,) = json.loads(run.values["sidecars"])
    secret = named(plan, SECRET, f"ms-test-{service}-identity")
    cert = named(plan, LOCAL_CERT, f"ms-test-{service}-cert")
    assert sidecar["name"] == ENVOY_CONTAINER and sidecar["image"] == ENVOY_IMAGE, sidecar
    assert sidecar["essential"] is True and sidecar["user"] == "101" and sidecar["readonlyRootFilesystem"] is True
    assert sidecar["command"] == envoy_command(view), f"{service}: command"
    assert json.loads(sidecar["command"][1]) == build_bootstrap(view), f"{service}: the bootstrap is build_bootstrap's"
    assert sidecar["healthCheck"] == {
        "command": envoy_container_health_check(),
        "interval": 5,
        "timeout": 2,
        "retries": 3,
        "startPeriod": 10,
    }
    assert sidecar["secrets"] == mesh_secrets(secret.outputs["arn"]), f"{secret.urn}: secrets come from its ARN"
    assert sidecar["environment"] == [{"name": MESH_CERT_SERIAL_ENV, "value": cert.id}], cert.urn
    assert sidecar["logConfiguration"]["options"]["awslogs-group"] == f"/ecs/ms-test-{service}"
    assert sidecar["logConfiguration"]["options"]["awslogs-stream-prefix"] == "envoy"
    ports = [m["containerPort"] for m in sidecar["portMappings"]]
    assert ports == ([MESH_PORT] if view.allowed_callers else []) + ([EDGE_PORT] if view.public else []), service
    # What the policy pack's mtls-required rule checks on the task definition, on this very bootstrap.
    findings = list(
        check_bootstrap(
            json.loads(sidecar["command"][1]),
            mesh_port=MESH_PORT,
            edge_port=EDGE_PORT,
            has_callers=bool(view.allowed_callers),
        )
    )
    assert findings == [], findings


def test_the_attachment_fills_the_microservice_integration_point() -> None:
    run = run_mesh(then=capture_attachment("web"))
    plan, identity = run.plan, run.mesh.identity("web")
    secret = named(plan, SECRET, "ms-test-web-identity")
    discovery = named(plan, DISCOVERY, "ms-test-web-discovery")
    cert = named(plan, LOCAL_CERT, "ms-test-web-cert")
    assert (
        run.values["app_environment"]
        == upstream_urls(identity.view)
        == {
            "AUTH_SERVICE_URL": "http://127.0.0.1:15001",
            "CART_SERVICE_URL": "http://127.0.0.1:15002",
        }
    )
    assert run.values["secret_arns"] == [secret.outputs["arn"]], secret.urn
    assert run.values["registry_arn"] == discovery.outputs["arn"], discovery.urn
    assert run.values["triggers"] == {"meshCertificateSerial": cert.id}, cert.urn
    assert run.mesh.alb_target("web") == {
        "target_port": EDGE_PORT,
        "target_protocol": "HTTPS",
        "target_container_name": ENVOY_CONTAINER,
    }
    with pytest.raises(ValueError, match="'cart' is not public"):
        run.mesh.alb_target("cart")
    with pytest.raises(KeyError, match="'mailer' is not a Fargate service of the mesh"):
        run.mesh.attachment_for("mailer", component_name="ms-test-mailer")
    assert identity.mesh_port is None and identity.edge_port == EDGE_PORT
    assert run.mesh.identity("auth").mesh_port == MESH_PORT and run.mesh.identity("auth").callers == ("cart", "web")


def serials(config: MeshConfig) -> dict[str, str]:
    """Each service's MESH_CERT_SERIAL as its sidecar would get it."""
    names = ("web", "cart", "auth")

    def then(mesh: ServiceMesh, capture: Callable[[str, Any], None]) -> None:
        for name in names:
            capture(
                name,
                pulumi.Output.json_dumps(list(mesh.attachment_for(name, component_name=f"ms-test-{name}").sidecars)),
            )

    run = run_mesh(config, then=then)
    return {name: json.loads(run.values[name])[0]["environment"][0]["value"] for name in names}


@pytest.mark.parametrize("authority", ["selfManaged", "privateCa"])
def test_a_reissued_certificate_changes_the_serial_in_the_task_definition(authority: str) -> None:
    month = serials(MeshConfig(certificate_authority=authority, cert_validity_hours=720))
    assert serials(MeshConfig(certificate_authority=authority, cert_validity_hours=720)) == month, "deterministic"
    fortnight = serials(MeshConfig(certificate_authority=authority, cert_validity_hours=360))
    for service, serial in month.items():
        assert serial and fortnight[service] != serial, f"{service}: a new certificate must roll the service"


def test_the_private_ca_serial_is_the_certificate_id_of_its_arn() -> None:
    run = run_mesh(MeshConfig(certificate_authority="privateCa"), then=capture_attachment("cart"))
    cert = named(run.plan, PCA_CERT, "ms-test-cart-cert")
    (sidecar,) = json.loads(run.values["sidecars"])
    serial = sidecar["environment"][0]["value"]
    assert cert.outputs["arn"] == f"{only(run.plan, PCA).outputs['arn']}/certificate/{serial}", cert.urn


def test_short_lived_certificates_select_the_cheaper_short_lived_ca_mode() -> None:
    assert pca_usage_mode(MeshConfig(cert_validity_hours=168, cert_renewal_hours=48)) == "SHORT_LIVED_CERTIFICATE"
    assert pca_usage_mode(MeshConfig(cert_validity_hours=169, cert_renewal_hours=48)) == "GENERAL_PURPOSE"
    run = run_mesh(MeshConfig(certificate_authority="privateCa", cert_validity_hours=168, cert_renewal_hours=48))
    ca = only(run.plan, PCA)
    assert ca.inputs["usageMode"] == "SHORT_LIVED_CERTIFICATE", ca.urn
    for cert in run.plan.of_type(PCA_CERT):
        if not cert.name.endswith("-ca-root-cert"):
            assert cert.inputs["validity"] == {"type": "DAYS", "value": "7"}, f"{cert.urn}: within the 7-day limit"


def test_renewal_epoch_leaves_at_least_the_renewal_window() -> None:
    validity, renewal = 7 * 24, 48
    period = timedelta(hours=validity - renewal)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minutes in range(0, 10 * 24 * 60, 37):
        issued = start + timedelta(minutes=minutes)
        epoch = renewal_epoch(issued, validity_hours=validity, renewal_hours=renewal)
        due = datetime.fromtimestamp((epoch + 1) * period.total_seconds(), tz=UTC)
        assert renewal_epoch(due, validity_hours=validity, renewal_hours=renewal) == epoch + 1
        assert renewal_epoch(due - timedelta(seconds=1), validity_hours=validity, renewal_hours=renewal) == epoch
        assert issued + timedelta(hours=validity) - due >= timedelta(hours=renewal), f"issued {issued}, due {due}"
    with pytest.raises(ValueError, match="timezone-aware"):
        renewal_epoch(datetime(2026, 1, 1), validity_hours=validity, renewal_hours=renewal)
    with pytest.raises(ValueError, match="less than validity"):
        renewal_epoch(start, validity_hours=24, renewal_hours=24)


def test_rotation_triggers_rekey_on_a_new_epoch_or_a_new_keeper() -> None:
    pca = MeshConfig(certificate_authority="privateCa", cert_validity_hours=168, cert_renewal_hours=48)
    first = run_mesh(pca).mesh.rotation_triggers
    same_epoch = run_mesh(pca, now=NOW + timedelta(hours=1)).mesh.rotation_triggers
    next_epoch = run_mesh(pca, now=NOW + timedelta(hours=120)).mesh.rotation_triggers
    assert first == same_epoch and set(first) == {"web", "cart", "auth"}
    assert all(next_epoch[s] != first[s] for s in first), (first, next_epoch)
    assert run_mesh(pca, rotation="2").mesh.rotation_triggers["cart"] != first["cart"]
    self_managed = run_mesh(MeshConfig()).mesh.rotation_triggers
    assert self_managed == run_mesh(MeshConfig(), now=NOW + timedelta(days=400)).mesh.rotation_triggers, (
        "pulumi-tls renews by itself: no clock in the trigger"
    )
    assert run_mesh(MeshConfig(), rotation="2").mesh.rotation_triggers != self_managed


# --- the identity secret's resource policy ----------------------------------------------------------
def can_read(policy: dict[str, Any], principal_arn: str, action: str = "secretsmanager:GetSecretValue") -> bool:
    """IAM evaluation for this policy's shape: an explicit Deny wins, then an Allow naming the principal."""

    def matches(statement: dict[str, Any]) -> bool:
        if statement["Action"] != action:
            return False
        principal = statement["Principal"]
        if principal != "*" and principal.get("AWS") != principal_arn:
            return False
        condition = statement.get("Condition", {}).get("StringNotEquals", {})
        return all(principal_arn != value for key, value in condition.items() if key == "aws:PrincipalArn")

    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and matches(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and matches(s) for s in statements)


SG_IDS = {"web": "sg-0web0000000000000", "cart": "sg-0cart000000000000", "auth": "sg-0auth000000000000"}
ROLE_ARNS = {
    "web": "arn:aws:iam::123456789012:role/ms-test-web-execution",
    "cart": ROLE_ARN,
    "auth": "arn:aws:iam::123456789012:role/ms-test-auth-execution",
}


def connect(mesh: ServiceMesh, capture: Callable[[str, Any], None]) -> None:
    """The wiring declared after the services (`components.wiring.MeshConnections`)."""
    MeshConnections(
        "ms-test-mesh-connections",
        MeshConnectionsArgs(mesh=mesh, security_group_ids=SG_IDS, execution_role_arns=ROLE_ARNS),
    )


def test_each_identity_secret_is_readable_by_its_own_execution_role_only() -> None:
    run = run_mesh(then=connect)
    resource = named(run.plan, SECRET_POLICY, "ms-test-cart-identity-policy")
    secret = named(run.plan, SECRET, "ms-test-cart-identity")
    assert run.plan.by_urn()[resource.parent].type == "microservices:wiring:MeshConnections", resource.urn
    assert resource.inputs["secretArn"] == secret.outputs["arn"], f"{resource.urn}: cart's own secret"
    assert resource.inputs["blockPublicPolicy"] is True, resource.urn
    policy = json.loads(resource.inputs["policy"])
    assert policy == json.loads(identity_secret_policy(ROLE_ARN)), resource.urn
    assert can_read(policy, ROLE_ARN), f"{resource.urn}: the execution role reads"
    for other in (
        "arn:aws:iam::123456789012:role/ms-test-web-execution",
        "arn:aws:iam::123456789012:role/ms-test-cart-task",
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::210987654321:role/ms-test-cart-execution",
    ):
        assert not can_read(policy, other), f"{resource.urn}: {other} must not read the value"
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "secretsmanager:GetSecretValue", "administrators keep every other action"
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalArn": ROLE_ARN}}, deny
    assert len(run.plan.of_type(SECRET_POLICY)) == 3


# --- east-west security groups ----------------------------------------------------------------------


def test_security_groups_mirror_the_call_graph_on_the_mesh_port_only() -> None:
    run = run_mesh(then=connect)
    edges = {("web", "cart"), ("web", "auth"), ("cart", "auth")}
    ingress = {
        (r.inputs["referencedSecurityGroupId"], r.inputs["securityGroupId"]): r for r in run.plan.of_type(INGRESS)
    }
    egress = {(r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"]): r for r in run.plan.of_type(EGRESS)}
    expected = {(SG_IDS[caller], SG_IDS[callee]) for caller, callee in edges}
    assert set(ingress) == expected, [r.urn for r in run.plan.of_type(INGRESS)]
    assert set(egress) == expected, [r.urn for r in run.plan.of_type(EGRESS)]
    for rule in [*ingress.values(), *egress.values()]:
        i = rule.inputs
        assert (i["ipProtocol"], i["fromPort"], i["toPort"]) == ("tcp", MESH_PORT, MESH_PORT), rule.urn
        assert "cidrIpv4" not in i and "cidrIpv6" not in i, rule.urn


def test_security_groups_and_rbac_follow_the_intersection_of_calls_and_accepts() -> None:
    """A call the callee does not accept opens nothing (the catalog also refuses it: test_config)."""
    catalog = [
        ServiceSpec(name="web", description="w", calls=("cart", "auth")),
        ServiceSpec(name="cart", description="c", calls=("auth",), accepts=("web",)),
        ServiceSpec(name="auth", description="a", accepts=("cart",)),  # web calls auth, auth does not accept web
    ]
    views = mesh_views(catalog, environment="test", trust_domain=TRUST_DOMAIN)
    assert views["auth"].allowed_callers == ("cart",)
    run = run_mesh(catalog=catalog, then=connect)
    ingress = {r.name for r in run.plan.of_type(INGRESS)}
    assert ingress == {"ms-test-cart-mesh-from-web", "ms-test-auth-mesh-from-cart"}, ingress


def test_mesh_connections_need_every_service_of_the_mesh() -> None:
    def then(mesh: ServiceMesh, capture: Callable[[str, Any], None]) -> None:
        MeshConnections(
            "c",
            MeshConnectionsArgs(mesh=mesh, security_group_ids={"web": SG_IDS["web"]}, execution_role_arns=ROLE_ARNS),
        )

    with pytest.raises(ValueError, match=r"one security group per meshed service .*missing: auth, cart"):
        run_mesh(then=then)


# --- modes and protection ---------------------------------------------------------------------------
@pytest.mark.parametrize("authority", ["selfManaged", "privateCa"])
def test_protect_covers_the_ca_only(authority: str) -> None:
    plan = run_mesh(MeshConfig(certificate_authority=authority), protect=True).plan
    ca_types = {KEY, SELF_SIGNED} if authority == "selfManaged" else {PCA, PCA_CERT, PCA_ACTIVATION}
    protected = sorted(r.name for r in plan.resources if r.protect)
    expected = sorted(r.name for r in plan.resources if r.type in ca_types and "-ca-" in f"{r.name}-")
    assert protected == expected and expected, protected


def test_certificate_fingerprint_matches_openssl() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test mesh CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    expected = "SHA256:" + ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
    assert certificate_fingerprint(pem) == expected


# --- the integration point, end to end ----------------------------------------------------------------
def test_a_microservice_built_with_the_attachment_runs_the_sidecar_and_registers_in_cloud_map() -> None:
    spec = CATALOG[1]  # cart: called by web, calls auth

    def then(mesh: ServiceMesh, capture: Callable[[str, Any], None]) -> None:
        service = FargateMicroservice(
            "ms-test-cart",
            FargateMicroserviceArgs(
                spec=spec,
                sizing=ServiceSizing(image="public.ecr.aws/docker/library/busybox:1.37"),
                runtime=TaskRuntime(
                    cpu_architecture="ARM64",
                    capacity=[CapacityShare("FARGATE", 1)],
                    log_retention_days=7,
                    tracing=True,
                    container_insights=True,
                    execute_command=False,
                ),
                store_settings=DataConfig(),
                vpc_id="vpc-0123456789abcdef0",
                private_subnet_ids=["subnet-0a", "subnet-0b"],
                isolated_subnet_ids=["subnet-1a", "subnet-1b"],
                cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/ms-test",
                cluster_name="ms-test",
                mesh=mesh.attachment_for("cart", component_name="ms-test-cart"),
            ),
            PlatformContext(
                environment="test",
                account_id="123456789012",
                region="us-east-1",
                partition="aws",
                tags={"Project": "microservices"},
            ).with_key(KEY_ARN),
        )
        MeshConnections(
            "ms-test-mesh-connections",
            MeshConnectionsArgs(
                mesh=mesh,
                security_group_ids={**SG_IDS, "cart": service.security_group_id},
                execution_role_arns={**ROLE_ARNS, "cart": service.execution_role_arn},
            ),
        )

    run = run_mesh(then=then)
    plan = run.plan
    task = only(plan, TASK_DEFINITION)
    containers = {c["name"]: c for c in json.loads(task.inputs["containerDefinitions"])}
    envoy, app = containers[ENVOY_CONTAINER], containers["app"]
    view = run.mesh.identity("cart").view
    assert json.loads(envoy["command"][1]) == build_bootstrap(view), task.urn
    assert {"containerName": ENVOY_CONTAINER, "condition": "HEALTHY"} in app["dependsOn"], task.urn
    assert {"name": "AUTH_SERVICE_URL", "value": "http://127.0.0.1:15001"} in app["environment"], task.urn
    secret = named(plan, SECRET, "ms-test-cart-identity")
    assert envoy["secrets"] == mesh_secrets(secret.outputs["arn"]), task.urn
    ecs = only(plan, ECS_SERVICE)
    assert ecs.inputs["serviceRegistries"] == {
        "registryArn": named(plan, DISCOVERY, "ms-test-cart-discovery").outputs["arn"]
    }
    assert ecs.inputs["triggers"] == {"meshCertificateSerial": named(plan, LOCAL_CERT, "ms-test-cart-cert").id}
    execution = next(r for r in plan.of_type(ROLE_POLICY) if r.name == "ms-test-cart-execution")
    statements = {s["Sid"]: s for s in json.loads(execution.inputs["policy"])["Statement"]}
    assert secret.outputs["arn"] in statements["OwnSecrets"]["Resource"], execution.urn
    policy = json.loads(named(plan, SECRET_POLICY, "ms-test-cart-identity-policy").inputs["policy"])
    role = next(r for r in plan.resources if r.type == "aws:iam/role:Role" and r.name == "ms-test-cart-execution")
    assert can_read(policy, role.outputs["arn"]), "the microservice's execution role is the one allowed"
