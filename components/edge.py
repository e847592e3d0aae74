"""Edge: how the internet reaches the public services (ARCHITECTURE.md, "Edge").

Two front doors, both ending at Application Load Balancers whose listener rules the
FargateMicroservice components add (this component owns no target group and no routing rule):

* **Public ALB** (public subnets, internet-facing, `Exposure=public`): HTTPS only with a modern TLS
  policy, HTTP answers with a 301 to HTTPS, invalid header fields dropped, strictest desync
  mitigation, deletion protection in prod, access logs to S3, and a WAFv2 web ACL (AWS managed rule
  groups plus a per-IP rate limit) logging to CloudWatch.
* **API Gateway HTTP API** reaching the private side through a VPC link. HTTP APIs integrate
  privately with an ALB *listener*, an NLB listener or a Cloud Map service. We put a second,
  INTERNAL ALB (private subnets) behind the VPC link instead of pointing it at the public ALB:
  every API request would reach the public ALB from the VPC link's few ENI addresses, so the WAF's
  per-IP rate rule would throttle the whole API as if it were one client, and the public ALB's
  security group would have to admit a non-internet source. Cloud Map is not an option either: the
  services register their mTLS mesh port there, which API Gateway cannot speak to (it has no mesh
  client certificate). The internal ALB accepts HTTP on API_LISTENER_PORT from the VPC link's
  security group only: HTTP APIs verify a private integration's TLS certificate against public CAs
  with no way to skip it, so TLS on that hop would fail in every stack without a public domain
  (README, "API Gateway path"); the internal ALB speaks TLS to the services' Envoy edge port.

Certificates: with `edge.domainName`, an ACM certificate validated by DNS (the validation record and
`CertificateValidation` are declared when `edge.hostedZoneId` is set; otherwise create the CNAME that
ACM asks for by hand, and the listeners wait for it). Without a domain (dev), a self-signed ECDSA
P-256 certificate from pulumi-tls is imported into ACM; its private key stays a Pulumi secret
end to end (pulumi-tls marks it secret, the ACM resource wraps `private_key` in a secret).

Access logs: ALB log delivery supports SSE-S3 only (not SSE-KMS), so the log bucket uses AES256
rather than the platform KMS key; it blocks public access, enforces bucket ownership (ACLs off),
denies non-TLS requests, lets ELB log delivery PutObject only under its prefixes for this account,
and expires objects after the observability log retention.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from components.context import PlatformContext
from components.iam import deny_insecure_transport
from model.aws_limits import ec2_description
from model.config import EdgeConfig
from model.errors import ConfigError
from model.spec import ServiceSpec

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
"""AWS's recommended ALB policy (the console default): TLS 1.3 and 1.2 with AEAD/ECDHE ciphers only,
plus hybrid post-quantum (ML-KEM) key exchange for clients that offer it."""

IDLE_TIMEOUT_SECONDS = 60
ACCESS_LOG_PREFIXES = {"public": "public-alb", "api": "api-alb"}
API_LISTENER_PORT = 80
"""The internal API ALB's HTTP listener, which only the API Gateway VPC link's security group reaches."""
"""S3 key prefix per load balancer (ELB appends `AWSLogs/<account>/...`; a prefix must not contain it)."""

WAF_MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesSQLiRuleSet",
)
"""Evaluated in this order, after the rate limit (cheap, high-signal rules first)."""

WAF_RATE_WINDOW_SECONDS = 300
"""`edge.wafRateLimit` counts requests per client IP over this window (5 minutes, WAF's default)."""

ELB_LOG_DELIVERY_ACCOUNTS: Mapping[str, str] = {
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-south-1": "718504428378",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ca-central-1": "985666609251",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
    "eu-central-1": "054676820928",
    "eu-north-1": "897822967062",
    "eu-south-1": "635631232127",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-gov-east-1": "190560391635",
    "us-gov-west-1": "048591011584",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
}
"""Regions that existed before August 2022 deliver ALB access logs from a regional Elastic Load
Balancing account; every Region opened since then uses the `logdelivery.elasticloadbalancing`
service principal instead (Elastic Load Balancing user guide, "Enable access logs", step 2). The
list is closed: no new Region will be added to it."""

ELB_LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"

API_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "path": "$context.path",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class EdgeListener:
    """One HTTPS listener a public service must be routed from (see `EdgeAttachment.listeners`)."""

    key: str
    """`public` (internet-facing ALB) or `api` (internal ALB behind the API Gateway VPC link)."""
    listener_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    """The load balancer's security group: the service's security group admits it on its port."""
    alb_arn_suffix: pulumi.Input[str]
    """For CloudWatch `LoadBalancer` dimensions (alarms on 5xx and latency)."""


@dataclass(frozen=True)
class EdgeAttachment:
    """What a public FargateMicroservice needs from the Edge to receive traffic.

    For EACH listener in `listeners` the service declares its own target group (`target_type="ip"`,
    HTTP on its container port, health check on its spec's path) and one listener rule forwarding
    `path_patterns(prefix)` for each of its `public_paths` at `rule_priorities[prefix]`, and admits
    that listener's `security_group_id` on its container port. API Gateway routes are declared here
    (they all go to the `api` listener), so a service needs `api_id`/`vpc_link_id` only for tagging
    or extra routes.
    """

    https_listener_arn: pulumi.Input[str]
    alb_security_group_id: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    api_listener_arn: pulumi.Input[str]
    api_alb_security_group_id: pulumi.Input[str]
    api_alb_arn_suffix: pulumi.Input[str]
    vpc_link_id: pulumi.Input[str]
    api_id: pulumi.Input[str]
    rule_priorities: Mapping[str, int] = field(default_factory=dict)
    """Listener rule priority per public path prefix, unique across all services (same on both ALBs)."""

    @property
    def listeners(self) -> tuple[EdgeListener, ...]:
        return (
            EdgeListener("public", self.https_listener_arn, self.alb_security_group_id, self.alb_arn_suffix),
            EdgeListener("api", self.api_listener_arn, self.api_alb_security_group_id, self.api_alb_arn_suffix),
        )


def path_patterns(prefix: str) -> list[str]:
    """ALB path-pattern values for one public path: the prefix itself and everything below it."""
    base = prefix.rstrip("/")
    return [base, f"{base}/*"]


def route_keys(prefix: str) -> list[str]:
    """API Gateway route keys for one public path (HTTP API greedy paths need at least one segment)."""
    base = prefix.rstrip("/")
    return [f"ANY {base}", f"ANY {base}/{{proxy+}}"]


def rule_priorities(services: Sequence[ServiceSpec]) -> dict[str, int]:
    """A stable, unique listener-rule priority per public path; a path claimed twice is an error."""
    owners: dict[str, str] = {}
    for spec in services:
        for path in spec.public_paths:
            base = path.rstrip("/")
            if base in owners and owners[base] != spec.name:
                raise ConfigError(f"public path {base} is claimed by both {owners[base]} and {spec.name}")
            owners[base] = spec.name
    # Longer prefixes first, so `/orders/admin` would win over `/orders`; steps of 10 leave room.
    ordered = sorted(owners, key=lambda p: (-p.count("/"), p))
    return {path: 100 + 10 * index for index, path in enumerate(ordered)}


def elb_log_delivery_principal(region: str, partition: str) -> dict[str, str]:
    """The principal that writes ALB access logs in `region` (legacy account or service principal)."""
    account = ELB_LOG_DELIVERY_ACCOUNTS.get(region)
    if account is not None:
        return {"AWS": f"arn:{partition}:iam::{account}:root"}
    return {"Service": ELB_LOG_DELIVERY_PRINCIPAL}


def access_log_bucket_policy(bucket_arn: str, *, account_id: str, region: str, partition: str) -> str:
    """TLS-only; ELB log delivery may PutObject under its prefixes for this account, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                deny_insecure_transport([bucket_arn, f"{bucket_arn}/*"], "s3:*"),
                {
                    "Sid": "ElbAccessLogDelivery",
                    "Effect": "Allow",
                    "Principal": elb_log_delivery_principal(region, partition),
                    "Action": "s3:PutObject",
                    "Resource": [
                        f"{bucket_arn}/{prefix}/AWSLogs/{account_id}/*" for prefix in ACCESS_LOG_PREFIXES.values()
                    ],
                },
            ],
        }
    )


def _not_found() -> aws.lb.ListenerDefaultActionArgs:
    """What a listener answers when no service rule claims the request: a JSON 404 from the load balancer."""
    return aws.lb.ListenerDefaultActionArgs(
        type="fixed-response",
        fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
            content_type="application/json", message_body=json.dumps({"message": "Not Found"}), status_code="404"
        ),
    )


def _dns_suffix(partition: str) -> str:
    return "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"


@dataclass(frozen=True)
class EdgeArgs:
    config: EdgeConfig
    is_production: bool
    """Deletion protection on both load balancers; log buckets cannot be force-destroyed."""
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    public_subnet_ids: pulumi.Input[Sequence[str]]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    public_services: Sequence[ServiceSpec]
    """Services with `public_paths`: their paths become API routes, their ports the ALBs' egress."""
    log_retention_days: int
    target_ports: Sequence[int] | None = None
    """Ports the ALBs may send to inside the VPC (their only egress); default: the public services'
    container ports. Set it when the services' target groups use another port (e.g. the Envoy edge
    port given as `AlbAttachment.target_port`), or the ALBs cannot reach their targets."""


class Edge(pulumi.ComponentResource):
    alb_dns_name: pulumi.Output[str]
    alb_arn: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    https_listener_arn: pulumi.Output[str]
    alb_security_group_id: pulumi.Output[str]
    api_alb_arn_suffix: pulumi.Output[str]
    api_listener_arn: pulumi.Output[str]
    api_alb_security_group_id: pulumi.Output[str]
    api_id: pulumi.Output[str]
    api_endpoint: pulumi.Output[str]
    vpc_link_id: pulumi.Output[str]
    web_acl_arn: pulumi.Output[str]
    access_logs_bucket: pulumi.Output[str]
    certificate_arn: pulumi.Output[str]
    attachment: EdgeAttachment

    def __init__(
        self, name: str, args: EdgeArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        """`context.key_arn` encrypts the WAF and API access log groups (not the S3 access logs: ELB
        supports SSE-S3 only)."""
        super().__init__("microservices:edge:Edge", name, None, opts)
        self._context = context
        priorities = rule_priorities(args.public_services)  # validates before any child is declared
        ports = args.target_ports if args.target_ports is not None else [s.container_port for s in args.public_services]
        service_ports = sorted(set(ports))

        log_bucket, log_bucket_ready = self._access_logs_bucket(name, args)
        self.access_logs_bucket = log_bucket.bucket
        self.certificate_arn = self._certificate(name, args)

        alb_sg, vpc_link_sg, api_alb_sg = self._security_groups(name, args, service_ports)
        alb = self._load_balancer(
            name=f"{name}-alb",
            args=args,
            internal=False,
            subnets=args.public_subnet_ids,
            security_group_id=alb_sg.id,
            log_bucket=log_bucket.bucket,
            log_prefix=ACCESS_LOG_PREFIXES["public"],
            depends_on=log_bucket_ready,
        )
        # HTTPS only (port 80 only redirects); a request no service rule claims gets a JSON 404.
        https = self._listener(
            f"{name}-alb-https",
            alb,
            port=443,
            protocol="HTTPS",
            default_action=_not_found(),
            ssl_policy=TLS_POLICY,
            certificate_arn=self.certificate_arn,
            hsts="max-age=31536000; includeSubDomains",
        )
        self._listener(
            f"{name}-alb-http",
            alb,
            port=80,
            protocol="HTTP",
            default_action=aws.lb.ListenerDefaultActionArgs(
                type="redirect",
                redirect=aws.lb.ListenerDefaultActionRedirectArgs(protocol="HTTPS", port="443", status_code="HTTP_301"),
            ),
        )
        self.web_acl_arn = self._waf(name, args, alb)

        api_alb = self._load_balancer(
            name=f"{name}-api-alb",
            args=args,
            internal=True,
            subnets=args.private_subnet_ids,
            security_group_id=api_alb_sg.id,
            log_bucket=log_bucket.bucket,
            log_prefix=ACCESS_LOG_PREFIXES["api"],
            depends_on=log_bucket_ready,
        )
        # The internal API ALB's listener: plain HTTP on API_LISTENER_PORT, reachable only from the VPC
        # link's security group (see `_api` for why this hop is not TLS); the ALB re-encrypts to each
        # service's Envoy edge port. A request no service rule claims gets a JSON 404.
        api_listener = self._listener(
            f"{name}-api-alb-http", api_alb, port=API_LISTENER_PORT, protocol="HTTP", default_action=_not_found()
        )
        self._api(name, args, vpc_link_sg, api_listener)

        self.alb_dns_name = alb.dns_name
        self.alb_arn = alb.arn
        self.alb_arn_suffix = alb.arn_suffix
        self.https_listener_arn = https.arn
        self.alb_security_group_id = alb_sg.id
        self.api_alb_arn_suffix = api_alb.arn_suffix
        self.api_listener_arn = api_listener.arn
        self.api_alb_security_group_id = api_alb_sg.id
        self.attachment = EdgeAttachment(
            https_listener_arn=self.https_listener_arn,
            alb_security_group_id=self.alb_security_group_id,
            alb_arn_suffix=self.alb_arn_suffix,
            api_listener_arn=self.api_listener_arn,
            api_alb_security_group_id=self.api_alb_security_group_id,
            api_alb_arn_suffix=self.api_alb_arn_suffix,
            vpc_link_id=self.vpc_link_id,
            api_id=self.api_id,
            rule_priorities=priorities,
        )
        self.register_outputs(
            {
                "albDnsName": self.alb_dns_name,
                "albArn": self.alb_arn,
                "albArnSuffix": self.alb_arn_suffix,
                "httpsListenerArn": self.https_listener_arn,
                "albSecurityGroupId": self.alb_security_group_id,
                "apiAlbArnSuffix": self.api_alb_arn_suffix,
                "apiListenerArn": self.api_listener_arn,
                "apiAlbSecurityGroupId": self.api_alb_security_group_id,
                "apiId": self.api_id,
                "apiEndpoint": self.api_endpoint,
                "vpcLinkId": self.vpc_link_id,
                "webAclArn": self.web_acl_arn,
                "accessLogsBucket": self.access_logs_bucket,
                "certificateArn": self.certificate_arn,
            }
        )

    # --- access logs -------------------------------------------------------------------------------

    def _access_logs_bucket(self, name: str, args: EdgeArgs) -> tuple[aws.s3.Bucket, list[pulumi.Resource]]:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-alb-logs",
            force_destroy=not args.is_production,
            tags={**self._context.tags, "Purpose": "alb-access-logs"},
            opts=child,
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-alb-logs-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-alb-logs-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-alb-logs-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    # SSE-S3: the only server-side encryption ALB access log delivery supports.
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=child,
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-alb-logs-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.log_retention_days),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-alb-logs-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: access_log_bucket_policy(
                    arn,
                    account_id=self._context.account_id,
                    region=self._context.region,
                    partition=self._context.partition,
                )
            ),
            # S3 rejects concurrent bucket-configuration writes; the policy goes in after the block.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )
        # ELB test-writes to the bucket when access logging is enabled: the ALBs wait for all of it.
        return bucket, [policy, encryption, ownership, public_access, lifecycle]

    # --- certificate -------------------------------------------------------------------------------

    def _certificate(self, name: str, args: EdgeArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        domain = args.config.domain_name
        if domain:
            certificate = aws.acm.Certificate(
                f"{name}-cert",
                domain_name=domain,
                validation_method="DNS",
                tags={**self._context.tags, "Name": domain},
                opts=child,
            )
            if not args.config.hosted_zone_id:
                return certificate.arn
            # One domain, no SANs: exactly one validation option, so the record count is known at
            # preview time (we never declare resources inside apply()).
            option = certificate.domain_validation_options.apply(lambda options: options[0])
            record = aws.route53.Record(
                f"{name}-cert-validation",
                zone_id=args.config.hosted_zone_id,
                name=option.apply(lambda o: o.resource_record_name),
                type=option.apply(lambda o: o.resource_record_type),
                records=[option.apply(lambda o: o.resource_record_value or "")],
                ttl=300,
                allow_overwrite=True,
                opts=child,
            )
            validation = aws.acm.CertificateValidation(
                f"{name}-cert-validation",
                certificate_arn=certificate.arn,
                validation_record_fqdns=[record.fqdn],
                opts=child,
            )
            return validation.certificate_arn

        # ALB DNS names look like `<name>-<id>.<region>.elb.amazonaws.com` (`internal-...` for the
        # internal one). A wildcard covers exactly one label, so the SAN must include the region.
        pattern = f"*.{self._context.region}.elb.{_dns_suffix(self._context.partition)}"
        key = tls.PrivateKey(f"{name}-tls-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        cert = tls.SelfSignedCert(
            f"{name}-tls-cert",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=pattern, organization="microservices platform"),
            dns_names=[pattern],
            validity_period_hours=24 * 365,
            early_renewal_hours=24 * 30,
            allowed_uses=["digital_signature", "server_auth"],
            opts=child,
        )
        imported = aws.acm.Certificate(
            f"{name}-cert",
            private_key=key.private_key_pem,
            certificate_body=cert.cert_pem,
            tags={**self._context.tags, "Name": f"{name} self-signed"},
            opts=child,
        )
        return imported.arn

    # --- security groups ---------------------------------------------------------------------------

    def _security_groups(
        self, name: str, args: EdgeArgs, service_ports: Sequence[int]
    ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """Rules are separate resources: a group declared without inline rules has AWS's default
        allow-all egress removed, so each group allows exactly what is listed here."""
        child = pulumi.ResourceOptions(parent=self)

        def group(suffix: str, description: str, exposure: str) -> aws.ec2.SecurityGroup:
            return aws.ec2.SecurityGroup(
                f"{name}-{suffix}",
                vpc_id=args.vpc_id,
                description=ec2_description(description),
                tags={**self._context.tags, "Name": f"{name}-{suffix}", "Exposure": exposure},
                opts=child,
            )

        alb_sg = group("alb-sg", "Internet-facing ALB: HTTPS and HTTP (redirect) in, service ports out", "public")
        vpc_link_sg = group("vpc-link-sg", "API Gateway VPC link: to the internal API ALB listener only", "internal")
        api_alb_sg = group("api-alb-sg", "Internal API ALB: from the VPC link only, service ports out", "internal")

        for port, scheme in ((443, "https"), (80, "http")):
            for family, cidr in (("ipv4", "0.0.0.0/0"), ("ipv6", "::/0")):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-alb-in-{scheme}-{family}",
                    security_group_id=alb_sg.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr if family == "ipv4" else None,
                    cidr_ipv6=cidr if family == "ipv6" else None,
                    description=f"{scheme.upper()} from the internet ({family})",
                    opts=child,
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-vpc-link-out-http",
            security_group_id=vpc_link_sg.id,
            referenced_security_group_id=api_alb_sg.id,
            ip_protocol="tcp",
            from_port=API_LISTENER_PORT,
            to_port=API_LISTENER_PORT,
            description="HTTP to the internal API ALB listener",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-alb-in-http",
            security_group_id=api_alb_sg.id,
            referenced_security_group_id=vpc_link_sg.id,
            ip_protocol="tcp",
            from_port=API_LISTENER_PORT,
            to_port=API_LISTENER_PORT,
            description="HTTP from the API Gateway VPC link only",
            opts=child,
        )
        for port in service_ports:
            for sg, prefix in ((alb_sg, "alb"), (api_alb_sg, "api-alb")):
                aws.vpc.SecurityGroupEgressRule(
                    f"{name}-{prefix}-out-{port}",
                    security_group_id=sg.id,
                    cidr_ipv4=args.vpc_cidr,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=f"Public service container port {port} (targets and health checks) in the VPC",
                    opts=child,
                )
        return alb_sg, vpc_link_sg, api_alb_sg

    # --- load balancers ----------------------------------------------------------------------------

    def _load_balancer(
        self,
        *,
        name: str,
        args: EdgeArgs,
        internal: bool,
        subnets: pulumi.Input[Sequence[str]],
        security_group_id: pulumi.Input[str],
        log_bucket: pulumi.Input[str],
        log_prefix: str,
        depends_on: Sequence[pulumi.Resource],
    ) -> aws.lb.LoadBalancer:
        return aws.lb.LoadBalancer(
            name,
            load_balancer_type="application",
            internal=internal,
            subnets=subnets,
            security_groups=[security_group_id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="strictest",
            enable_http2=True,
            idle_timeout=IDLE_TIMEOUT_SECONDS,
            enable_deletion_protection=args.is_production,
            enable_waf_fail_open=False,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=log_bucket, prefix=log_prefix, enabled=True),
            tags={**self._context.tags, "Name": name, "Exposure": "internal" if internal else "public"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def _listener(
        self,
        name: str,
        lb: aws.lb.LoadBalancer,
        *,
        port: int,
        protocol: str,
        default_action: aws.lb.ListenerDefaultActionArgs,
        ssl_policy: str | None = None,
        certificate_arn: pulumi.Input[str] | None = None,
        hsts: str | None = None,
    ) -> aws.lb.Listener:
        """A listener of `lb` with one default action; the TLS settings only on an HTTPS listener."""
        return aws.lb.Listener(
            name,
            load_balancer_arn=lb.arn,
            port=port,
            protocol=protocol,
            ssl_policy=ssl_policy,
            certificate_arn=certificate_arn,
            routing_http_response_strict_transport_security_header_value=hsts,
            default_actions=[default_action],
            tags=dict(self._context.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- WAF ---------------------------------------------------------------------------------------

    def _waf(self, name: str, args: EdgeArgs, alb: aws.lb.LoadBalancer) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)

        def visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
            return aws.wafv2.WebAclRuleVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
            )

        rules = [
            aws.wafv2.WebAclRuleArgs(
                name="RateLimitPerIp",
                priority=0,
                action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        limit=args.config.waf_rate_limit,
                        aggregate_key_type="IP",
                        evaluation_window_sec=WAF_RATE_WINDOW_SECONDS,
                    )
                ),
                visibility_config=visibility(f"{name}-rate-limit"),
            ),
            *(
                aws.wafv2.WebAclRuleArgs(
                    name=group,
                    priority=index,
                    override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                        none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()
                    ),
                    statement=aws.wafv2.WebAclRuleStatementArgs(
                        managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                            name=group, vendor_name="AWS"
                        )
                    ),
                    visibility_config=visibility(f"{name}-{group}"),
                )
                for index, group in enumerate(WAF_MANAGED_RULE_GROUPS, start=1)
            ),
        ]
        acl = aws.wafv2.WebAcl(
            f"{name}-waf",
            scope="REGIONAL",
            description=f"{name}: managed rule groups and a per-IP rate limit in front of the public ALB",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=f"{name}-waf", sampled_requests_enabled=True
            ),
            tags=dict(self._context.tags),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(f"{name}-waf-alb", resource_arn=alb.arn, web_acl_arn=acl.arn, opts=child)

        # WAF only logs to destinations whose name starts with `aws-waf-logs-`.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-waf-logs",
            name=f"aws-waf-logs-{name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=self._context.key_arn,
            tags=dict(self._context.tags),
            opts=child,
        )
        # Our own resource policy: otherwise WAF rewrites the account-wide `AWSWAF-LOGS` policy, which
        # overflows its size limit once an account holds many web ACLs.
        log_policy = aws.cloudwatch.LogResourcePolicy(
            f"{name}-waf-logs-policy",
            policy_name=f"{name}-waf-logs",
            policy_document=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": f"{arn}:*",
                                "Condition": {
                                    "ArnLike": {
                                        "aws:SourceArn": f"arn:{self._context.partition}:logs:{self._context.region}:{self._context.account_id}:*"
                                    },
                                    "StringEquals": {"aws:SourceAccount": self._context.account_id},
                                },
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-waf-logging",
            resource_arn=acl.arn,
            log_destination_configs=[log_group.arn],
            # Bearer tokens and session cookies never land in the logs.
            redacted_fields=[
                aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                    single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
                )
                for header in ("authorization", "cookie")
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_policy]),
        )
        return acl.arn

    # --- API Gateway -------------------------------------------------------------------------------

    def _api(
        self,
        name: str,
        args: EdgeArgs,
        vpc_link_sg: aws.ec2.SecurityGroup,
        listener: aws.lb.Listener,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        vpc_link = aws.apigatewayv2.VpcLink(
            f"{name}-vpc-link",
            subnet_ids=args.private_subnet_ids,
            security_group_ids=[vpc_link_sg.id],
            tags=dict(self._context.tags),
            opts=child,
        )
        api = aws.apigatewayv2.Api(
            f"{name}-api",
            protocol_type="HTTP",
            description=f"{name}: public API routes to the private services through a VPC link",
            tags=dict(self._context.tags),
            opts=child,
        )
        # No tlsConfig: the VPC link speaks HTTP to the internal ALB's listener. With tlsConfig, an HTTP
        # API verifies the ALB's certificate against public CAs and HTTP APIs have no equivalent of REST
        # APIs' insecureSkipVerification (API Gateway developer guide, x-amazon-apigateway-integration
        # .tlsConfig), so the self-signed certificate of a stack without a domain would fail every
        # request's handshake. This hop cannot fail: it stays inside the VPC, between the VPC link's
        # ENIs and an internal ALB whose security group admits only the VPC link's group on this port;
        # the ALB then speaks TLS to the services' Envoy edge port as the public ALB does.
        integration = aws.apigatewayv2.Integration(
            f"{name}-api-integration",
            api_id=api.id,
            integration_type="HTTP_PROXY",
            integration_method="ANY",
            integration_uri=listener.arn,
            connection_type="VPC_LINK",
            connection_id=vpc_link.id,
            payload_format_version="1.0",
            opts=child,
        )
        authorizer: aws.apigatewayv2.Authorizer | None = None
        if args.config.jwt_issuer:
            authorizer = aws.apigatewayv2.Authorizer(
                f"{name}-api-jwt",
                api_id=api.id,
                authorizer_type="JWT",
                identity_sources=["$request.header.Authorization"],
                jwt_configuration=aws.apigatewayv2.AuthorizerJwtConfigurationArgs(
                    issuer=args.config.jwt_issuer, audiences=list(args.config.jwt_audience)
                ),
                opts=child,
            )
        target = integration.id.apply(lambda integration_id: f"integrations/{integration_id}")
        for spec in args.public_services:
            for path in spec.public_paths:
                slug = path.strip("/").replace("/", "-")
                for key, suffix in zip(route_keys(path), ("", "-proxy"), strict=True):
                    aws.apigatewayv2.Route(
                        f"{name}-api-route-{slug}{suffix}",
                        api_id=api.id,
                        route_key=key,
                        target=target,
                        authorization_type="JWT" if authorizer else "NONE",
                        authorizer_id=authorizer.id if authorizer else None,
                        opts=child,
                    )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-api-access-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=self._context.key_arn,
            tags=dict(self._context.tags),
            opts=child,
        )
        aws.apigatewayv2.Stage(
            f"{name}-api-stage",
            api_id=api.id,
            name="$default",
            auto_deploy=True,
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn, format=API_ACCESS_LOG_FORMAT
            ),
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_rate_limit=args.config.api_throttle_rate,
                throttling_burst_limit=args.config.api_throttle_burst,
                detailed_metrics_enabled=True,
            ),
            tags=dict(self._context.tags),
            opts=child,
        )
        self.api_id = api.id
        self.api_endpoint = api.api_endpoint
        self.vpc_link_id = vpc_link.id
