"""Edge: public ALB (HTTPS only, WAF, access logs), API Gateway behind a VPC link, certificates.

Stack-level properties are checked on the real dev and prod previews (cached per session); the
domain / hosted zone / JWT variants run the component alone under the same recording mocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.context import PlatformContext
from components.edge import (
    ACCESS_LOG_PREFIXES,
    ELB_LOG_DELIVERY_PRINCIPAL,
    TLS_POLICY,
    WAF_MANAGED_RULE_GROUPS,
    Edge,
    EdgeArgs,
    access_log_bucket_policy,
    elb_log_delivery_principal,
    path_patterns,
    route_keys,
    rule_priorities,
)
from components.envoy import EDGE_PORT
from model.config import EdgeConfig, parse_stack_config
from model.errors import ConfigError
from model.spec import ServiceSpec
from offline.export import SECRET_SIG, SECRET_SIG_KEY
from offline.plan import Plan, PlannedResource
from services import load_catalog
from tests.conftest import children_of, only, preview, run_component

LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
CERT = "aws:acm/certificate:Certificate"
ROUTE = "aws:apigatewayv2/route:Route"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BUCKET = "aws:s3/bucket:Bucket"


def named(plan: Plan, type_token: str, name: str) -> PlannedResource:
    matches = [r for r in plan.of_type(type_token) if r.name == name]
    assert len(matches) == 1, f"expected one {type_token} named {name}, got {[r.urn for r in plan.of_type(type_token)]}"
    return matches[0]


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


@pytest.fixture(scope="module")
def dev() -> Plan:
    return preview("dev").plan


@pytest.fixture(scope="module")
def prod() -> Plan:
    return preview("prod").plan


# --- component runs with config the stacks do not set ----------------------------------------------

SERVICES = [
    ServiceSpec(name="alpha", description="a", container_port=9000, public_paths=("/alpha",)),
    ServiceSpec(name="beta", description="b", container_port=8080, public_paths=("/beta", "/beta/admin")),
]


def edge_with(
    config: EdgeConfig, *, region: str = "us-east-1", target_ports: list[int] | None = None
) -> Callable[[], Edge]:
    def build() -> Edge:
        return Edge(
            "ms-test",
            EdgeArgs(
                config=config,
                is_production=False,
                vpc_id="vpc-0123456789abcdef0",
                vpc_cidr="10.40.0.0/16",
                public_subnet_ids=["subnet-0000000000000000a", "subnet-0000000000000000b"],
                private_subnet_ids=["subnet-0000000000000000c", "subnet-0000000000000000d"],
                public_services=SERVICES,
                log_retention_days=30,
                target_ports=target_ports,
            ),
            PlatformContext(
                environment="test",
                account_id="123456789012",
                region=region,
                partition="aws",
                tags={"Environment": "test"},
            ).with_key("arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-a444-555555555555"),
        )

    return build


@pytest.fixture(scope="module")
def domain_zone_jwt() -> Plan:
    config = EdgeConfig(
        domain_name="api.example.com",
        hosted_zone_id="Z0123456789ABCDEFGHIJ",
        jwt_issuer="https://auth.example.com/",
        jwt_audience=("orders-api", "users-api"),
    )
    return run_component(edge_with(config))


@pytest.fixture(scope="module")
def domain_no_zone() -> Plan:
    return run_component(edge_with(EdgeConfig(domain_name="api.example.com")))


# --- load balancers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_public_alb_is_internet_facing_hardened_and_logged(stack: str) -> None:
    plan = preview(stack).plan
    alb = named(plan, LB, f"ms-{stack}-alb")
    vpc = only(plan, "awsx:ec2:Vpc")
    bucket = named(plan, BUCKET, f"ms-{stack}-alb-logs")
    sg = named(plan, SG, f"ms-{stack}-alb-sg")
    i = alb.inputs
    assert i["loadBalancerType"] == "application" and i["internal"] is False, alb.urn
    assert i["subnets"] == vpc.outputs["publicSubnetIds"], alb.urn
    assert i["securityGroups"] == [sg.id], alb.urn
    assert i["dropInvalidHeaderFields"] is True, alb.urn
    assert i["desyncMitigationMode"] == "strictest", alb.urn
    assert i["enableHttp2"] is True and i["idleTimeout"] == 60, alb.urn
    assert i["tags"]["Exposure"] == "public", alb.urn
    assert i["accessLogs"] == {"enabled": True, "bucket": bucket.outputs["bucket"], "prefix": "public-alb"}, alb.urn
    policy = named(plan, "aws:s3/bucketPolicy:BucketPolicy", f"ms-{stack}-alb-logs-policy")
    assert policy.urn in alb.dependencies, f"{alb.urn}: enabling access logs needs the bucket policy first"


def test_internal_api_alb_sits_in_private_subnets(dev: Plan) -> None:
    alb = named(dev, LB, "ms-dev-api-alb")
    vpc = only(dev, "awsx:ec2:Vpc")
    assert alb.inputs["internal"] is True, alb.urn
    assert alb.inputs["subnets"] == vpc.outputs["privateSubnetIds"], alb.urn
    assert alb.inputs["tags"]["Exposure"] == "internal", alb.urn
    assert alb.inputs["dropInvalidHeaderFields"] is True and alb.inputs["desyncMitigationMode"] == "strictest"
    assert alb.inputs["accessLogs"]["prefix"] == "api-alb", alb.urn


def test_deletion_protection_only_in_prod(dev: Plan, prod: Plan) -> None:
    for alb in dev.of_type(LB):
        assert alb.inputs["enableDeletionProtection"] is False, alb.urn
    for alb in prod.of_type(LB):
        assert alb.inputs["enableDeletionProtection"] is True, alb.urn
    assert named(dev, BUCKET, "ms-dev-alb-logs").inputs["forceDestroy"] is True
    assert named(prod, BUCKET, "ms-prod-alb-logs").inputs["forceDestroy"] is False


# --- listeners ---------------------------------------------------------------------------------------


def test_listeners_are_https_or_a_redirect_to_https(stack_plan: Plan) -> None:
    listeners = stack_plan.of_type(LISTENER)
    assert len(listeners) == 3, [r.urn for r in listeners]
    for listener in listeners:
        i = listener.inputs
        if i["protocol"] == "HTTPS":
            assert i["port"] == 443, listener.urn
            continue
        assert (i["protocol"], i["port"]) == ("HTTP", 80), listener.urn
        if listener.name.endswith("-api-alb-http"):  # the VPC link's hop to the internal ALB
            assert i["defaultActions"][0]["fixedResponse"]["statusCode"] == "404", listener.urn
            continue
        assert i["defaultActions"] == [
            {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
        ], listener.urn
    https = [r for r in listeners if r.inputs["protocol"] == "HTTPS"]
    public_alb = named(stack_plan, LB, f"ms-{stack_plan.stack}-alb")
    api_alb = named(stack_plan, LB, f"ms-{stack_plan.stack}-api-alb")
    assert [r.inputs["loadBalancerArn"] for r in https] == [public_alb.outputs["arn"]], "only the public ALB has :443"
    api_listener = named(stack_plan, LISTENER, f"ms-{stack_plan.stack}-api-alb-http")
    assert api_listener.inputs["loadBalancerArn"] == api_alb.outputs["arn"] and api_alb.inputs["internal"] is True


def test_https_listeners_use_the_modern_tls_policy_and_a_json_404(dev: Plan) -> None:
    cert = only(dev, CERT)
    assert TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
    for name in ("ms-dev-alb-https",):
        listener = named(dev, LISTENER, name)
        i = listener.inputs
        assert i["sslPolicy"] == TLS_POLICY, listener.urn
        assert i["certificateArn"] == cert.outputs["arn"], listener.urn
        assert i["routingHttpResponseStrictTransportSecurityHeaderValue"].startswith("max-age=31536000")
        (action,) = i["defaultActions"]
        assert action["type"] == "fixed-response", listener.urn
        assert action["fixedResponse"]["statusCode"] == "404", listener.urn
        assert action["fixedResponse"]["contentType"] == "application/json", listener.urn
        assert json.loads(action["fixedResponse"]["messageBody"]) == {"message": "Not Found"}, listener.urn


# --- access log bucket -------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "retention"), [("dev", 14), ("prod", 365)])
def test_access_log_bucket_is_private_sse_s3_and_expires(stack: str, retention: int) -> None:
    plan = preview(stack).plan
    bucket = named(plan, BUCKET, f"ms-{stack}-alb-logs")
    name = bucket.outputs["bucket"]
    sse = named(
        plan,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"ms-{stack}-alb-logs-encryption",
    )
    assert sse.inputs["bucket"] == name, sse.urn
    # ALB log delivery supports SSE-S3 only: a KMS default would silently stop the logs.
    assert sse.inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}], sse.urn
    block = named(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"ms-{stack}-alb-logs-public-access")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.inputs[flag] is True, f"{block.urn}: {flag}"
    ownership = named(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"ms-{stack}-alb-logs-ownership")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, ownership.urn
    lifecycle = named(
        plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"ms-{stack}-alb-logs-lifecycle"
    )
    (rule,) = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["expiration"]["days"] == retention, lifecycle.urn


def test_access_log_bucket_policy_is_tls_only_and_scoped_to_elb_prefixes(dev: Plan) -> None:
    bucket = named(dev, BUCKET, "ms-dev-alb-logs")
    policy = named(dev, "aws:s3/bucketPolicy:BucketPolicy", "ms-dev-alb-logs-policy")
    arn = bucket.outputs["arn"]
    doc = json.loads(policy.inputs["policy"])
    deny, allow = doc["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*", policy.urn
    assert deny["Resource"] == [arn, f"{arn}/*"], policy.urn
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, policy.urn
    # us-east-1 predates August 2022: logs come from the regional ELB account, not a service principal.
    assert allow["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}, policy.urn
    assert allow["Action"] == "s3:PutObject", policy.urn
    assert allow["Resource"] == [f"{arn}/public-alb/AWSLogs/123456789012/*", f"{arn}/api-alb/AWSLogs/123456789012/*"]


def test_regions_opened_since_august_2022_use_the_log_delivery_service_principal() -> None:
    assert elb_log_delivery_principal("ap-southeast-4", "aws") == {"Service": ELB_LOG_DELIVERY_PRINCIPAL}
    assert elb_log_delivery_principal("eu-west-1", "aws") == {"AWS": "arn:aws:iam::156460612806:root"}
    doc = json.loads(
        access_log_bucket_policy("arn:aws:s3:::logs", account_id="111122223333", region="il-central-1", partition="aws")
    )
    allow = doc["Statement"][1]
    assert allow["Principal"] == {"Service": ELB_LOG_DELIVERY_PRINCIPAL}
    assert allow["Resource"] == [f"arn:aws:s3:::logs/{p}/AWSLogs/111122223333/*" for p in ACCESS_LOG_PREFIXES.values()]


# --- WAF ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "limit"), [("dev", 1000), ("prod", 5000)])
def test_waf_rules_and_rate_limit_follow_config(stack: str, limit: int) -> None:
    plan = preview(stack).plan
    acl = only(plan, "aws:wafv2/webAcl:WebAcl")
    i = acl.inputs
    assert i["scope"] == "REGIONAL" and i["defaultAction"] == {"allow": {}}, acl.urn
    assert i["visibilityConfig"]["cloudwatchMetricsEnabled"] is True, acl.urn
    rules = {r["name"]: r for r in i["rules"]}
    assert len({r["priority"] for r in i["rules"]}) == len(i["rules"]), f"{acl.urn}: duplicate priorities"
    rate = rules["RateLimitPerIp"]
    assert rate["statement"]["rateBasedStatement"] == {
        "limit": limit,
        "aggregateKeyType": "IP",
        "evaluationWindowSec": 300,
    }, acl.urn
    assert rate["action"] == {"block": {}}, acl.urn
    for group in WAF_MANAGED_RULE_GROUPS:
        rule = rules[group]
        assert rule["statement"] == {"managedRuleGroupStatement": {"vendorName": "AWS", "name": group}}, acl.urn
        assert rule["overrideAction"] == {"none": {}}, f"{acl.urn}: {group} must block, not count"
    assert set(WAF_MANAGED_RULE_GROUPS) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesSQLiRuleSet",
    }
    for rule in i["rules"]:
        assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True, f"{acl.urn}: {rule['name']}"


def test_waf_is_associated_with_the_public_alb_and_logs_to_cloudwatch(dev: Plan) -> None:
    acl = only(dev, "aws:wafv2/webAcl:WebAcl")
    alb = named(dev, LB, "ms-dev-alb")
    association = only(dev, "aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.inputs == {"resourceArn": alb.outputs["arn"], "webAclArn": acl.outputs["arn"]}, association.urn
    group = named(dev, LOG_GROUP, "ms-dev-waf-logs")
    key = only(dev, "aws:kms/key:Key")
    assert group.inputs["name"].startswith("aws-waf-logs-"), group.urn
    assert group.inputs["retentionInDays"] == 14 and group.inputs["kmsKeyId"] == key.outputs["arn"], group.urn
    logging = only(dev, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging.inputs["resourceArn"] == acl.outputs["arn"], logging.urn
    assert logging.inputs["logDestinationConfigs"] == [group.outputs["arn"]], logging.urn
    redacted = {f["singleHeader"]["name"] for f in logging.inputs["redactedFields"]}
    assert redacted == {"authorization", "cookie"}, logging.urn
    policy = only(dev, "aws:cloudwatch/logResourcePolicy:LogResourcePolicy")
    assert policy.urn in logging.dependencies, logging.urn
    (statement,) = json.loads(policy.inputs["policyDocument"])["Statement"]
    assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}, policy.urn
    assert statement["Resource"] == f"{group.outputs['arn']}:*", policy.urn
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}, policy.urn


def test_only_the_public_alb_has_a_web_acl(stack_plan: Plan) -> None:
    # The internal ALB sees every API request from the VPC link's few addresses: a per-IP rate rule
    # there would throttle the whole API. API Gateway throttling covers that path instead.
    (association,) = stack_plan.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    public_alb = named(stack_plan, LB, f"ms-{stack_plan.stack}-alb")
    assert association.inputs["resourceArn"] == public_alb.outputs["arn"], association.urn


# --- certificates ------------------------------------------------------------------------------------


def test_without_a_domain_a_self_signed_certificate_is_imported_and_its_key_stays_secret(dev: Plan) -> None:
    key = named(dev, "tls:index/privateKey:PrivateKey", "ms-dev-tls-key")
    assert key.inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"}, key.urn
    assert "privateKeyPem" in key.secret_outputs, key.urn
    self_signed = named(dev, "tls:index/selfSignedCert:SelfSignedCert", "ms-dev-tls-cert")
    assert self_signed.inputs["dnsNames"] == ["*.us-east-1.elb.amazonaws.com"], self_signed.urn
    assert set(self_signed.inputs["allowedUses"]) == {"digital_signature", "server_auth"}, self_signed.urn
    assert is_secret(self_signed.inputs["privateKeyPem"]), f"{self_signed.urn}: key must reach the cert as a secret"
    cert = only(dev, CERT)
    assert is_secret(cert.inputs["privateKey"]), f"{cert.urn}: privateKey must be a secret in the plan"
    assert cert.inputs["privateKey"]["value"] == key.outputs["privateKeyPem"], cert.urn
    assert cert.inputs["certificateBody"] == self_signed.outputs["certPem"], cert.urn
    assert "domainName" not in cert.inputs and "validationMethod" not in cert.inputs, cert.urn
    assert not dev.of_type("aws:route53/record:Record") and not dev.of_type(
        "aws:acm/certificateValidation:CertificateValidation"
    )


def test_with_a_domain_and_zone_acm_validates_by_dns(domain_zone_jwt: Plan) -> None:
    plan = domain_zone_jwt
    assert not plan.of_type("tls:index/privateKey:PrivateKey") and not plan.of_type(
        "tls:index/selfSignedCert:SelfSignedCert"
    )
    cert = only(plan, CERT)
    assert cert.inputs["domainName"] == "api.example.com" and cert.inputs["validationMethod"] == "DNS", cert.urn
    assert "privateKey" not in cert.inputs, cert.urn
    (option,) = cert.outputs["domainValidationOptions"]
    record = only(plan, "aws:route53/record:Record")
    assert record.inputs["zoneId"] == "Z0123456789ABCDEFGHIJ", record.urn
    assert record.inputs["name"] == option["resourceRecordName"], record.urn
    assert record.inputs["type"] == "CNAME" and record.inputs["records"] == [option["resourceRecordValue"]]
    validation = only(plan, "aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["certificateArn"] == cert.outputs["arn"], validation.urn
    assert record.urn in validation.property_dependencies["validationRecordFqdns"], validation.urn
    for listener in plan.of_type(LISTENER):
        if listener.inputs["protocol"] == "HTTPS":
            # The listeners wait for the certificate to be ISSUED (they take the validation's ARN).
            assert validation.urn in listener.property_dependencies["certificateArn"], listener.urn
    integration = only(plan, "aws:apigatewayv2/integration:Integration")
    assert "tlsConfig" not in integration.inputs, f"{integration.urn}: the same plain hop with or without a domain"


def test_with_a_domain_but_no_zone_the_certificate_waits_for_manual_validation(domain_no_zone: Plan) -> None:
    cert = only(domain_no_zone, CERT)
    assert cert.inputs["validationMethod"] == "DNS", cert.urn
    assert not domain_no_zone.of_type("aws:route53/record:Record")
    assert not domain_no_zone.of_type("aws:acm/certificateValidation:CertificateValidation")
    https = named(domain_no_zone, LISTENER, "ms-test-alb-https")
    assert https.inputs["certificateArn"] == cert.outputs["arn"], https.urn


# --- API Gateway -------------------------------------------------------------------------------------


def test_http_api_reaches_the_internal_alb_through_a_vpc_link(dev: Plan) -> None:
    api = only(dev, "aws:apigatewayv2/api:Api")
    assert api.inputs["protocolType"] == "HTTP", api.urn
    link = only(dev, "aws:apigatewayv2/vpcLink:VpcLink")
    vpc = only(dev, "awsx:ec2:Vpc")
    link_sg = named(dev, SG, "ms-dev-vpc-link-sg")
    assert link.inputs["subnetIds"] == vpc.outputs["privateSubnetIds"], link.urn
    assert link.inputs["securityGroupIds"] == [link_sg.id], link.urn
    integration = only(dev, "aws:apigatewayv2/integration:Integration")
    listener = named(dev, LISTENER, "ms-dev-api-alb-http")
    i = integration.inputs
    assert (i["integrationType"], i["integrationMethod"], i["connectionType"]) == ("HTTP_PROXY", "ANY", "VPC_LINK")
    assert i["connectionId"] == link.id and i["integrationUri"] == listener.outputs["arn"], integration.urn
    # No TLS on this hop: HTTP APIs verify a private integration's certificate against public CAs and
    # cannot skip it, so a self-signed internal ALB would fail every request.
    assert "tlsConfig" not in i, integration.urn


def test_routes_cover_every_public_path_of_the_public_services(dev: Plan) -> None:
    integration = only(dev, "aws:apigatewayv2/integration:Integration")
    routes = dev.of_type(ROUTE)
    keys = sorted(r.inputs["routeKey"] for r in routes)
    public = [s for s in load_catalog() if s.kind == "fargate" and s.is_public]
    assert public, "the catalogue has public services"
    expected = sorted(k for spec in public for path in spec.public_paths for k in route_keys(path))
    assert keys == expected, [r.urn for r in routes]
    for route in routes:
        assert route.inputs["target"] == f"integrations/{integration.id}", route.urn
        assert route.inputs["authorizationType"] == "NONE", route.urn
    assert not dev.of_type("aws:apigatewayv2/authorizer:Authorizer")


def test_jwt_authorizer_guards_every_route_when_configured(domain_zone_jwt: Plan) -> None:
    authorizer = only(domain_zone_jwt, "aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer.inputs["authorizerType"] == "JWT", authorizer.urn
    assert authorizer.inputs["identitySources"] == ["$request.header.Authorization"], authorizer.urn
    assert authorizer.inputs["jwtConfiguration"] == {
        "issuer": "https://auth.example.com/",
        "audiences": ["orders-api", "users-api"],
    }, authorizer.urn
    routes = domain_zone_jwt.of_type(ROUTE)
    expected = [k for path in ("/alpha", "/beta", "/beta/admin") for k in route_keys(path)]
    assert sorted(r.inputs["routeKey"] for r in routes) == sorted(expected)
    assert "ANY /beta/admin/{proxy+}" in expected
    for route in routes:
        assert route.inputs["authorizationType"] == "JWT", route.urn
        assert route.inputs["authorizerId"] == authorizer.id, route.urn


@pytest.mark.parametrize(("stack", "rate", "burst"), [("dev", 100, 200), ("prod", 1000, 2000)])
def test_default_stage_logs_json_to_kms_and_throttles_from_config(stack: str, rate: int, burst: int) -> None:
    plan = preview(stack).plan
    stage = only(plan, "aws:apigatewayv2/stage:Stage")
    i = stage.inputs
    assert i["name"] == "$default" and i["autoDeploy"] is True, stage.urn
    assert i["defaultRouteSettings"] == {
        "throttlingRateLimit": rate,
        "throttlingBurstLimit": burst,
        "detailedMetricsEnabled": True,
    }, stage.urn
    group = named(plan, LOG_GROUP, f"ms-{stack}-api-access-logs")
    key = only(plan, "aws:kms/key:Key")
    assert i["accessLogSettings"]["destinationArn"] == group.outputs["arn"], stage.urn
    assert group.inputs["kmsKeyId"] == key.outputs["arn"], group.urn
    assert group.inputs["retentionInDays"] == {"dev": 14, "prod": 365}[stack], group.urn
    fields = json.loads(i["accessLogSettings"]["format"])
    assert {"requestId", "ip", "routeKey", "status", "integrationLatency"} <= set(fields), stage.urn
    assert fields["ip"] == "$context.identity.sourceIp" and fields["requestId"] == "$context.requestId"


# --- security groups ---------------------------------------------------------------------------------


def rules_of(plan: Plan, type_token: str, sg: PlannedResource) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_token) if r.inputs["securityGroupId"] == sg.id]


def test_public_alb_admits_only_80_and_443_from_anywhere(stack_plan: Plan) -> None:
    sg = named(stack_plan, SG, f"ms-{stack_plan.stack}-alb-sg")
    assert sg.inputs["tags"]["Exposure"] == "public", sg.urn
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs, f"{sg.urn}: rules are separate resources"
    ingress = {
        (
            r.inputs["ipProtocol"],
            r.inputs["fromPort"],
            r.inputs["toPort"],
            r.inputs.get("cidrIpv4") or r.inputs["cidrIpv6"],
        )
        for r in rules_of(stack_plan, INGRESS, sg)
    }
    assert ingress == {
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("tcp", 443, 443, "::/0"),
        ("tcp", 80, 80, "0.0.0.0/0"),
        ("tcp", 80, 80, "::/0"),
    }, sg.urn
    cidr = {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}[stack_plan.stack]
    egress = {
        (r.inputs["fromPort"], r.inputs["toPort"], r.inputs["cidrIpv4"]) for r in rules_of(stack_plan, EGRESS, sg)
    }
    # Public services are reached only through their Envoy sidecar's TLS edge port, never the app port.
    assert egress == {(EDGE_PORT, EDGE_PORT, cidr)}, f"{sg.urn}: only the sidecars' edge port, only inside the VPC"


def test_internal_path_is_closed_to_everything_but_the_vpc_link(dev: Plan) -> None:
    link_sg = named(dev, SG, "ms-dev-vpc-link-sg")
    api_sg = named(dev, SG, "ms-dev-api-alb-sg")
    (ingress,) = rules_of(dev, INGRESS, api_sg)
    assert ingress.inputs["referencedSecurityGroupId"] == link_sg.id, ingress.urn
    assert (ingress.inputs["fromPort"], ingress.inputs["toPort"]) == (80, 80), ingress.urn
    assert "cidrIpv4" not in ingress.inputs and "cidrIpv6" not in ingress.inputs, ingress.urn
    assert not rules_of(dev, INGRESS, link_sg), "the VPC link only initiates connections"
    (link_out,) = rules_of(dev, EGRESS, link_sg)
    assert link_out.inputs["referencedSecurityGroupId"] == api_sg.id and link_out.inputs["fromPort"] == 80


def test_alb_egress_follows_the_public_services_ports(domain_no_zone: Plan) -> None:
    sg = named(domain_no_zone, SG, "ms-test-alb-sg")
    ports = sorted(r.inputs["fromPort"] for r in rules_of(domain_no_zone, EGRESS, sg))
    assert ports == [8080, 9000], sg.urn


def test_alb_egress_follows_an_explicit_target_port() -> None:
    # e.g. the services put Envoy's edge listener behind the ALBs instead of the app port
    plan = run_component(edge_with(EdgeConfig(), target_ports=[15444]))
    for name in ("ms-test-alb-sg", "ms-test-api-alb-sg"):
        sg = named(plan, SG, name)
        egress = [(r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in rules_of(plan, EGRESS, sg)]
        assert egress == [(15444, "10.40.0.0/16")], sg.urn


# --- wiring, exports, contract with FargateMicroservice ---------------------------------------------


def test_every_edge_resource_is_a_child_of_the_component(dev: Plan) -> None:
    edge = only(dev, "microservices:edge:Edge")
    edge_only_types = {
        LB,
        LISTENER,
        CERT,
        "aws:wafv2/webAcl:WebAcl",
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
        "aws:apigatewayv2/api:Api",
        "aws:apigatewayv2/vpcLink:VpcLink",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/stage:Stage",
        ROUTE,
    }
    children = {r.urn for r in children_of(dev, edge.urn)}
    for r in dev.resources:
        if r.type in edge_only_types:
            assert r.urn in children, f"{r.urn}: expected parent {edge.urn}"
    assert len(children) >= len(edge_only_types)


def test_stack_exports_alb_dns_name_and_api_endpoint(stack_plan: Plan) -> None:
    alb = named(stack_plan, LB, f"ms-{stack_plan.stack}-alb")
    api = only(stack_plan, "aws:apigatewayv2/api:Api")
    assert stack_plan.outputs["albDnsName"] == alb.outputs["dnsName"]
    assert stack_plan.outputs["albDnsName"].endswith(".us-east-1.elb.amazonaws.com")
    assert stack_plan.outputs["apiEndpoint"] == api.outputs["apiEndpoint"]
    assert stack_plan.outputs["apiEndpoint"].startswith("https://")


def test_listener_rule_priorities_are_unique_and_longest_prefix_first() -> None:
    priorities = rule_priorities(SERVICES)
    assert priorities == {"/beta/admin": 100, "/alpha": 110, "/beta": 120}
    assert path_patterns("/beta/") == ["/beta", "/beta/*"]
    clash = [*SERVICES, ServiceSpec(name="gamma", description="g", public_paths=("/alpha",))]
    with pytest.raises(ConfigError, match="public path /alpha is claimed by both alpha and gamma"):
        rule_priorities(clash)


def test_attachment_hands_both_listeners_to_the_services() -> None:
    captured: list[Edge] = []

    def build() -> None:
        captured.append(edge_with(EdgeConfig())())

    run_component(build)
    attachment = captured[0].attachment
    assert [listener.key for listener in attachment.listeners] == ["public", "api"]
    assert attachment.rule_priorities == rule_priorities(SERVICES)


# --- config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        ({"jwtIssuer": "https://auth.example.com/"}, "jwtAudience must list at least one audience"),
        ({"jwtAudience": ["api"]}, "jwtIssuer must be set when jwtAudience is set"),
        ({"jwtIssuer": "http://auth.example.com/", "jwtAudience": ["api"]}, "microservices:edge.jwtIssuer"),
    ],
)
def test_jwt_config_is_validated(edge: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_stack_config("dev", {"environment": "dev", "region": "us-east-1", "edge": edge})
