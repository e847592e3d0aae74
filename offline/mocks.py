"""AWS-shaped answers for the Pulumi mock runtime, from one data-driven table.

Every resource type the platform declares has a row in `RESOURCE_SHAPES`: how AWS names its id and ARN,
and which other attributes (endpoints, DNS names, URLs) the real provider would return. Values are
deterministic (derived from the resource's URN) so two runs print the same plan, and they follow the
real formats (`arn:aws:sqs:us-east-1:123456789012:orders-queue-3f2a9c1`,
`sg-0a1b2c3d4e5f60718`, `https://sqs.us-east-1.amazonaws.com/123456789012/...`) so code that parses
or interpolates them is exercised. A type without a row is an error, not a silent guess: add its row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"
PARTITION = "aws"
DNS_SUFFIX = "amazonaws.com"


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Ctx:
    """What a row needs to build values: the logical and physical name, region and a stable hash."""

    name: str
    physical: str
    region: str
    inputs: Mapping[str, Any]
    seed: str

    @property
    def account(self) -> str:
        return ACCOUNT_ID

    def hex(self, length: int = 17) -> str:
        return _digest(self.seed, str(length), length=length)

    def uuid(self, salt: str = "") -> str:
        """A version-4-shaped UUID, stable for this resource (and salt)."""
        h = _digest(self.seed, "uuid", salt, length=32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return f"arn:{PARTITION}:{service}:{self.region if region else ''}:{ACCOUNT_ID if account else ''}:{resource}"


Row = Callable[[Ctx], dict[str, Any]]


@dataclass(frozen=True)
class Shape:
    """One row: `id` and `outputs` are functions of the context; `name_key` is the input holding the
    physical name (Pulumi auto-names it `<logical>-<7 hex>` when unset)."""

    id: Callable[[Ctx], str]
    outputs: Row = lambda c: {}
    name_key: str | None = "name"
    max_name: int = 255
    echo_inputs: bool = True
    """Custom resources echo their inputs as outputs (as providers do); remote components do not."""


def _az(ctx: Ctx, index: int = 0) -> str:
    return f"{ctx.region}{'abcdef'[index % 6]}"


def _alias_arn(c: Ctx) -> str:
    return c.arn("lambda", f"function:{c.inputs.get('functionName', 'function')}:{c.physical}")


def _sg_id(c: Ctx) -> str:
    return f"sg-{c.hex()}"


def _attached(key: str, outputs: Row = lambda c: {}) -> Shape:
    """A resource that attaches to another (a policy, a setting, a validation): the provider's id is
    what it attaches to, the value of its input `key`; it has no name of its own."""
    return Shape(id=lambda c: str(c.inputs.get(key, "")), name_key=None, outputs=outputs)


_SG_RULE = Shape(
    id=lambda c: f"sgr-{c.hex()}",
    name_key=None,
    outputs=lambda c: {
        "arn": c.arn("ec2", f"security-group-rule/sgr-{c.hex()}"),
        "securityGroupRuleId": f"sgr-{c.hex()}",
    },
)
"""`aws.vpc.SecurityGroupIngressRule` and `...EgressRule`: one `sgr-` id and rule ARN shape for both."""


RESOURCE_SHAPES: dict[str, Shape] = {
    # --- network -------------------------------------------------------------------------------
    "aws:ec2/vpc:Vpc": Shape(
        id=lambda c: f"vpc-{c.hex()}",
        name_key=None,
        outputs=lambda c: {
            "arn": c.arn("ec2", f"vpc/vpc-{c.hex()}"),
            "defaultSecurityGroupId": f"sg-{c.hex()[::-1]}",
        },
    ),
    "aws:ec2/securityGroup:SecurityGroup": Shape(
        id=_sg_id,
        outputs=lambda c: {"arn": c.arn("ec2", f"security-group/{_sg_id(c)}"), "ownerId": ACCOUNT_ID},
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _SG_RULE,
    "aws:ec2/securityGroupRule:SecurityGroupRule": Shape(
        # The legacy rule resource: the provider's id is "sgrule-<crc32 of the rule's fields>".
        id=lambda c: f"sgrule-{int(c.hex(8), 16)}",
        name_key=None,
        outputs=lambda c: {"securityGroupRuleId": f"sgr-{c.hex()}"},
    ),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _SG_RULE,
    "aws:ec2/flowLog:FlowLog": Shape(
        id=lambda c: f"fl-{c.hex()}",
        name_key=None,
        outputs=lambda c: {"arn": c.arn("ec2", f"vpc-flow-log/fl-{c.hex()}")},
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": Shape(
        id=lambda c: f"vpce-{c.hex()}",
        name_key=None,
        outputs=lambda c: {
            "arn": c.arn("ec2", f"vpc-endpoint/vpce-{c.hex()}"),
            "dnsEntries": [
                {"dnsName": f"vpce-{c.hex()}.{c.region}.vpce.{DNS_SUFFIX}", "hostedZoneId": "Z7HUB22UULQXV"}
            ],
            "prefixListId": f"pl-{c.hex(8)}",
        },
    ),
    # awsx.ec2.Vpc is a remote (multi-language) component: under mocks it has no children, only the
    # outputs it would publish. Subnet ids come in AZ order, one per configured zone and tier.
    "awsx:ec2:Vpc": Shape(id=lambda c: "", name_key=None, outputs=lambda c: _awsx_vpc_outputs(c), echo_inputs=False),
    # --- containers ----------------------------------------------------------------------------
    "aws:ecs/cluster:Cluster": Shape(
        id=lambda c: c.arn("ecs", f"cluster/{c.physical}"),
        outputs=lambda c: {"arn": c.arn("ecs", f"cluster/{c.physical}")},
    ),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": Shape(
        id=lambda c: str(c.inputs.get("clusterName", c.physical)), name_key=None
    ),
    "aws:ecs/taskDefinition:TaskDefinition": Shape(
        id=lambda c: str(c.inputs.get("family", c.physical)),
        name_key="family",
        outputs=lambda c: {
            "arn": c.arn("ecs", f"task-definition/{c.inputs.get('family', c.physical)}:1"),
            "arnWithoutRevision": c.arn("ecs", f"task-definition/{c.inputs.get('family', c.physical)}"),
            "revision": 1,
        },
    ),
    "aws:ecs/service:Service": Shape(
        id=lambda c: c.arn("ecs", f"service/cluster/{c.physical}"),
        outputs=lambda c: {"arn": c.arn("ecs", f"service/cluster/{c.physical}")},
    ),
    "aws:ecr/repository:Repository": Shape(
        id=lambda c: c.physical,
        outputs=lambda c: {
            "arn": c.arn("ecr", f"repository/{c.physical}"),
            "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{c.region}.{DNS_SUFFIX}/{c.physical}",
            "registryId": ACCOUNT_ID,
        },
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": Shape(
        id=lambda c: str(c.inputs.get("repository", c.physical)),
        name_key=None,
        outputs=lambda c: {"registryId": ACCOUNT_ID},
    ),
    # The docker-build provider's image (pulumi-docker-build): nothing is built offline. The digest is
    # derived from the build inputs (context, Dockerfile, platforms, tags: the tag is a source hash),
    # and `ref` is `<first tag>@<digest>` as the provider reports for a pushed image.
    "docker-build:index:Image": Shape(
        id=lambda c: _image_digest(c),
        name_key=None,
        outputs=lambda c: {
            "digest": _image_digest(c),
            "ref": f"{(c.inputs.get('tags') or [c.name])[0]}@{_image_digest(c)}",
            "contextHash": _issued(c, 64),
        },
    ),
    "aws:appautoscaling/target:Target": Shape(
        id=lambda c: str(c.inputs.get("resourceId", c.physical)),
        name_key=None,
        outputs=lambda c: {"arn": c.arn("application-autoscaling", f"scalable-target/{c.hex(30)}")},
    ),
    "aws:appautoscaling/policy:Policy": Shape(
        id=lambda c: c.physical,
        outputs=lambda c: {
            "arn": c.arn("autoscaling", f"scalingPolicy:{c.hex(8)}:resource/ecs/{c.physical}"),
            "alarmArns": [],
        },
    ),
    # --- identity and secrets ------------------------------------------------------------------
    "aws:iam/role:Role": Shape(
        id=lambda c: c.physical,
        max_name=64,
        outputs=lambda c: {
            "arn": c.arn("iam", f"role/{c.physical}", region=False),
            "uniqueId": f"AROA{c.hex(17).upper()}",
        },
    ),
    "aws:iam/rolePolicy:RolePolicy": Shape(id=lambda c: f"{c.inputs.get('role', 'role')}:{c.physical}", max_name=128),
    "aws:iam/policy:Policy": Shape(
        id=lambda c: c.arn("iam", f"policy/{c.physical}", region=False),
        max_name=128,
        outputs=lambda c: {
            "arn": c.arn("iam", f"policy/{c.physical}", region=False),
            "policyId": f"ANPA{c.hex(17).upper()}",
        },
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Shape(id=lambda c: f"{c.name}-{c.hex(8)}", name_key=None),
    "aws:iam/policyAttachment:PolicyAttachment": Shape(id=lambda c: c.physical),
    "aws:kms/key:Key": Shape(
        id=lambda c: f"{c.uuid()}",
        name_key=None,
        outputs=lambda c: {
            "arn": c.arn("kms", f"key/{c.uuid()}"),
            "keyId": f"{c.uuid()}",
        },
    ),
    "aws:kms/alias:Alias": Shape(
        id=lambda c: str(c.inputs.get("name", f"alias/{c.physical}")),
        outputs=lambda c: {"arn": c.arn("kms", str(c.inputs.get("name", "alias/x")))},
    ),
    "aws:secretsmanager/secret:Secret": Shape(
        id=lambda c: c.arn("secretsmanager", f"secret:{c.physical}-{c.hex(6)}"),
        max_name=512,
        outputs=lambda c: {"arn": c.arn("secretsmanager", f"secret:{c.physical}-{c.hex(6)}")},
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": Shape(
        id=lambda c: f"{c.inputs.get('secretId', 'secret')}|{c.uuid('version')}",
        name_key=None,
        outputs=lambda c: {"arn": str(c.inputs.get("secretId", "")), "versionId": c.uuid("version")},
    ),
    "aws:secretsmanager/secretPolicy:SecretPolicy": _attached("secretArn"),
    "aws:secretsmanager/secretRotation:SecretRotation": _attached("secretId"),
    # --- data stores ---------------------------------------------------------------------------
    "aws:rds/instance:Instance": Shape(
        id=lambda c: f"db-{c.hex(26).upper()}",
        name_key="identifier",
        max_name=63,
        outputs=lambda c: {
            "arn": c.arn("rds", f"db:{c.physical}"),
            "address": f"{c.physical}.c{c.hex(11)}.{c.region}.rds.{DNS_SUFFIX}",
            "endpoint": f"{c.physical}.c{c.hex(11)}.{c.region}.rds.{DNS_SUFFIX}:5432",
            "port": 5432,
            "resourceId": f"db-{c.hex(26).upper()}",
            "hostedZoneId": "Z2R2ITUGPM61AM",
            "masterUserSecrets": [
                {
                    "secretArn": c.arn("secretsmanager", f"secret:rds!db-{c.hex(8)}-{c.hex(4)}-{c.hex(6)}"),
                    "secretStatus": "active",
                    "kmsKeyId": str(c.inputs.get("masterUserSecretKmsKeyId", "")),
                }
            ],
        },
    ),
    "aws:rds/subnetGroup:SubnetGroup": Shape(
        id=lambda c: c.physical, max_name=255, outputs=lambda c: {"arn": c.arn("rds", f"subgrp:{c.physical}")}
    ),
    "aws:rds/parameterGroup:ParameterGroup": Shape(
        id=lambda c: c.physical, outputs=lambda c: {"arn": c.arn("rds", f"pg:{c.physical}")}
    ),
    "aws:dynamodb/table:Table": Shape(
        id=lambda c: c.physical,
        outputs=lambda c: {
            "arn": c.arn("dynamodb", f"table/{c.physical}"),
            "streamArn": c.arn("dynamodb", f"table/{c.physical}/stream/2026-11-27T00:00:00.000"),
            "streamLabel": "2026-11-27T00:00:00.000",
        },
    ),
    "aws:dynamodb/resourcePolicy:ResourcePolicy": _attached(
        "resourceArn",
        outputs=lambda c: {"revisionId": str(int(c.hex(12), 16))},
    ),
    "aws:ssm/parameter:Parameter": Shape(
        id=lambda c: c.physical,
        max_name=1011,
        outputs=lambda c: {
            "arn": c.arn("ssm", f"parameter/{c.physical.lstrip('/')}"),
            "version": 1,
            "tier": "Standard",
        },
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": Shape(
        id=lambda c: c.physical,
        name_key="replicationGroupId",
        max_name=40,
        outputs=lambda c: {
            "arn": c.arn("elasticache", f"replicationgroup:{c.physical}"),
            "primaryEndpointAddress": f"master.{c.physical}.{c.hex(6)}.use1.cache.{DNS_SUFFIX}",
            "readerEndpointAddress": f"replica.{c.physical}.{c.hex(6)}.use1.cache.{DNS_SUFFIX}",
            "memberClusters": [f"{c.physical}-001"],
        },
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": Shape(
        id=lambda c: c.physical, outputs=lambda c: {"arn": c.arn("elasticache", f"subnetgroup:{c.physical}")}
    ),
    "aws:elasticache/user:User": Shape(
        id=lambda c: str(c.inputs.get("userId", c.physical)),
        name_key="userId",
        outputs=lambda c: {"arn": c.arn("elasticache", f"user:{c.inputs.get('userId', c.physical)}")},
    ),
    "aws:elasticache/userGroup:UserGroup": Shape(
        id=lambda c: str(c.inputs.get("userGroupId", c.physical)),
        name_key="userGroupId",
        outputs=lambda c: {"arn": c.arn("elasticache", f"usergroup:{c.inputs.get('userGroupId', c.physical)}")},
    ),
    # --- messaging -----------------------------------------------------------------------------
    "aws:sqs/queue:Queue": Shape(
        id=lambda c: f"https://sqs.{c.region}.{DNS_SUFFIX}/{ACCOUNT_ID}/{c.physical}",
        max_name=80,
        outputs=lambda c: {
            "arn": c.arn("sqs", c.physical),
            "url": f"https://sqs.{c.region}.{DNS_SUFFIX}/{ACCOUNT_ID}/{c.physical}",
        },
    ),
    "aws:sqs/queuePolicy:QueuePolicy": _attached("queueUrl"),
    "aws:sqs/redrivePolicy:RedrivePolicy": _attached("queueUrl"),
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": _attached("queueUrl"),
    "aws:sns/topic:Topic": Shape(
        id=lambda c: c.arn("sns", c.physical),
        max_name=256,
        outputs=lambda c: {"arn": c.arn("sns", c.physical), "owner": ACCOUNT_ID},
    ),
    "aws:sns/topicPolicy:TopicPolicy": _attached("arn", outputs=lambda c: {"owner": ACCOUNT_ID}),
    "aws:sns/topicSubscription:TopicSubscription": Shape(
        id=lambda c: f"{c.inputs.get('topic', '')}:{c.uuid()}",
        name_key=None,
        outputs=lambda c: {"arn": f"{c.inputs.get('topic', '')}:{c.uuid()}"},
    ),
    "aws:cloudwatch/eventBus:EventBus": Shape(
        id=lambda c: c.physical,
        max_name=256,
        outputs=lambda c: {"arn": c.arn("events", f"event-bus/{c.physical}")},
    ),
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": _attached("eventBusName"),
    "aws:cloudwatch/eventArchive:EventArchive": Shape(
        id=lambda c: c.physical,
        max_name=48,
        outputs=lambda c: {"arn": c.arn("events", f"archive/{c.physical}")},
    ),
    "aws:cloudwatch/eventRule:EventRule": Shape(
        id=lambda c: f"{c.inputs.get('eventBusName', 'default')}/{c.physical}",
        max_name=64,
        outputs=lambda c: {"arn": c.arn("events", f"rule/{c.inputs.get('eventBusName', 'default')}/{c.physical}")},
    ),
    "aws:cloudwatch/eventTarget:EventTarget": Shape(
        id=lambda c: f"{c.inputs.get('eventBusName', 'default')}-{c.inputs.get('rule', '')}-{c.physical}",
        name_key="targetId",
        max_name=64,
    ),
    "aws:schemas/registry:Registry": Shape(
        id=lambda c: c.physical, outputs=lambda c: {"arn": c.arn("schemas", f"registry/{c.physical}")}
    ),
    "aws:schemas/schema:Schema": Shape(
        id=lambda c: f"{c.physical}/{c.inputs.get('registryName', '')}",
        outputs=lambda c: {
            "arn": c.arn("schemas", f"schema/{c.inputs.get('registryName', '')}/{c.physical}"),
            "version": "1",
            "versionCreatedDate": "2026-11-27T00:00:00Z",
        },
    ),
    # --- data patterns: Step Functions (sagas, outbox decoder) and EventBridge Pipes (outboxes) ---
    # ARN formats: "arn:aws:states:<region>:<account>:stateMachine:<name>" (Step Functions API
    # reference, CreateStateMachine) and "arn:aws:pipes:<region>:<account>:pipe/<name>" (Pipes API
    # reference, CreatePipe). Both services use the ARN as the resource id in the AWS provider.
    "aws:sfn/stateMachine:StateMachine": Shape(
        id=lambda c: c.arn("states", f"stateMachine:{c.physical}"),
        max_name=80,
        outputs=lambda c: {
            "arn": c.arn("states", f"stateMachine:{c.physical}"),
            "stateMachineVersionArn": "",
            "revisionId": c.uuid("revision"),
            "status": "ACTIVE",
            "creationDate": "2026-11-27T00:00:00Z",
        },
    ),
    "aws:pipes/pipe:Pipe": Shape(
        id=lambda c: c.physical,
        max_name=64,
        outputs=lambda c: {"arn": c.arn("pipes", f"pipe/{c.physical}")},
    ),
    # --- compute: Lambda -----------------------------------------------------------------------
    "aws:lambda/function:Function": Shape(
        id=lambda c: c.physical,
        max_name=64,
        outputs=lambda c: {
            "arn": c.arn("lambda", f"function:{c.physical}"),
            "invokeArn": f"arn:{PARTITION}:apigateway:{c.region}:lambda:path/2015-03-31/functions/"
            f"{c.arn('lambda', f'function:{c.physical}')}/invocations",
            # With `publish`, AWS publishes version 1 on create (later ones count up).
            "qualifiedArn": c.arn("lambda", f"function:{c.physical}:{'1' if c.inputs.get('publish') else '$LATEST'}"),
            "version": "1" if c.inputs.get("publish") else "$LATEST",
            "sourceCodeHash": c.hex(43),
        },
    ),
    "aws:lambda/alias:Alias": Shape(
        id=_alias_arn,
        outputs=lambda c: {
            "arn": _alias_arn(c),
            "invokeArn": f"arn:{PARTITION}:apigateway:{c.region}:lambda:path/2015-03-31/functions/"
            f"{_alias_arn(c)}/invocations",
        },
    ),
    "aws:codedeploy/application:Application": Shape(
        id=lambda c: f"{c.uuid()}:{c.physical}",
        max_name=100,
        outputs=lambda c: {
            "applicationId": c.uuid(),
            "arn": c.arn("codedeploy", f"application:{c.physical}"),
        },
    ),
    "aws:codedeploy/deploymentGroup:DeploymentGroup": Shape(
        id=lambda c: c.uuid(),
        name_key="deploymentGroupName",
        max_name=100,
        outputs=lambda c: {
            "deploymentGroupId": c.uuid(),
            "arn": c.arn("codedeploy", f"deploymentgroup:{c.inputs.get('appName', 'app')}/{c.physical}"),
        },
    ),
    "aws:lambda/eventSourceMapping:EventSourceMapping": Shape(
        id=lambda c: f"{c.uuid()}",
        name_key=None,
        outputs=lambda c: {
            "uuid": f"{c.uuid()}",
            "arn": c.arn("lambda", f"event-source-mapping:{c.uuid()}"),
        },
    ),
    "aws:lambda/permission:Permission": Shape(id=lambda c: c.physical, name_key="statementId"),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": _attached("functionName"),
    # --- observability -------------------------------------------------------------------------
    "aws:cloudwatch/logGroup:LogGroup": Shape(
        id=lambda c: c.physical,
        max_name=512,
        outputs=lambda c: {"arn": c.arn("logs", f"log-group:{c.physical}")},
    ),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": Shape(
        id=lambda c: c.physical, name_key="policyName", max_name=255
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Shape(
        id=lambda c: c.physical, outputs=lambda c: {"arn": c.arn("cloudwatch", f"alarm:{c.physical}")}
    ),
    "aws:cloudwatch/dashboard:Dashboard": Shape(
        id=lambda c: c.physical,
        name_key="dashboardName",
        outputs=lambda c: {"dashboardArn": c.arn("cloudwatch", f"dashboard/{c.physical}", region=False)},
    ),
    # --- edge ----------------------------------------------------------------------------------
    "aws:lb/loadBalancer:LoadBalancer": Shape(
        id=lambda c: c.arn("elasticloadbalancing", f"loadbalancer/app/{c.physical}/{c.hex(16)}"),
        max_name=32,
        outputs=lambda c: {
            "arn": c.arn("elasticloadbalancing", f"loadbalancer/app/{c.physical}/{c.hex(16)}"),
            "arnSuffix": f"app/{c.physical}/{c.hex(16)}",
            "dnsName": f"{c.physical}-{int(c.hex(9), 16) % 10**10}.{c.region}.elb.{DNS_SUFFIX}",
            "zoneId": "Z35SXDOTRQ7X7K",
        },
    ),
    "aws:lb/targetGroup:TargetGroup": Shape(
        id=lambda c: c.arn("elasticloadbalancing", f"targetgroup/{c.physical}/{c.hex(16)}"),
        max_name=32,
        outputs=lambda c: {
            "arn": c.arn("elasticloadbalancing", f"targetgroup/{c.physical}/{c.hex(16)}"),
            "arnSuffix": f"targetgroup/{c.physical}/{c.hex(16)}",
        },
    ),
    "aws:lb/listener:Listener": Shape(
        id=lambda c: c.arn("elasticloadbalancing", f"listener/app/lb/{c.hex(16)}/{c.hex(16)[::-1]}"),
        name_key=None,
        outputs=lambda c: {"arn": c.arn("elasticloadbalancing", f"listener/app/lb/{c.hex(16)}/{c.hex(16)[::-1]}")},
    ),
    "aws:lb/listenerRule:ListenerRule": Shape(
        id=lambda c: c.arn("elasticloadbalancing", f"listener-rule/app/lb/{c.hex(16)}/{c.hex(16)[::-1]}/{c.hex(8)}"),
        name_key=None,
        outputs=lambda c: {
            "arn": c.arn("elasticloadbalancing", f"listener-rule/app/lb/{c.hex(16)}/{c.hex(16)[::-1]}/{c.hex(8)}")
        },
    ),
    "aws:acm/certificate:Certificate": Shape(
        id=lambda c: c.arn("acm", f"certificate/{c.uuid()}"),
        name_key=None,
        outputs=lambda c: {
            "arn": c.arn("acm", f"certificate/{c.uuid()}"),
            "domainValidationOptions": [
                {
                    "domainName": str(c.inputs.get("domainName", "")),
                    "resourceRecordName": f"_{c.hex(32)}.{c.inputs.get('domainName', '')}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{c.hex(32)[::-1]}.acm-validations.aws.",
                }
            ],
            "status": "ISSUED",
        },
    ),
    "aws:acm/certificateValidation:CertificateValidation": _attached("certificateArn"),
    "aws:route53/record:Record": Shape(id=lambda c: f"Z{c.hex(12).upper()}_{c.physical}", name_key=None),
    "aws:wafv2/webAcl:WebAcl": Shape(
        id=lambda c: f"{c.uuid()}",
        max_name=128,
        outputs=lambda c: {
            "arn": c.arn("wafv2", f"regional/webacl/{c.physical}/{c.uuid()}"),
            "capacity": 700,
        },
    ),
    "aws:wafv2/webAclAssociation:WebAclAssociation": Shape(
        id=lambda c: f"{c.inputs.get('webAclArn', '')},{c.inputs.get('resourceArn', '')}", name_key=None
    ),
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": _attached("resourceArn"),
    "aws:apigatewayv2/api:Api": Shape(
        id=lambda c: c.hex(10),
        outputs=lambda c: {
            "arn": f"arn:{PARTITION}:apigateway:{c.region}::/apis/{c.hex(10)}",
            "apiEndpoint": f"https://{c.hex(10)}.execute-api.{c.region}.{DNS_SUFFIX}",
            "executionArn": c.arn("execute-api", c.hex(10)),
        },
    ),
    "aws:apigatewayv2/vpcLink:VpcLink": Shape(
        id=lambda c: c.hex(6),
        outputs=lambda c: {"arn": f"arn:{PARTITION}:apigateway:{c.region}::/vpclinks/{c.hex(6)}"},
    ),
    "aws:apigatewayv2/stage:Stage": Shape(
        id=lambda c: c.physical,
        outputs=lambda c: {
            "arn": f"arn:{PARTITION}:apigateway:{c.region}::/apis/x/stages/{c.physical}",
            "invokeUrl": f"https://{c.hex(10)}.execute-api.{c.region}.{DNS_SUFFIX}/{c.physical}",
            "executionArn": c.arn("execute-api", f"{c.hex(10)}/{c.physical}"),
        },
    ),
    "aws:apigatewayv2/integration:Integration": Shape(id=lambda c: c.hex(7), name_key=None),
    "aws:apigatewayv2/route:Route": Shape(id=lambda c: c.hex(7), name_key=None),
    "aws:apigatewayv2/authorizer:Authorizer": Shape(id=lambda c: c.hex(6)),
    # --- S3 (ALB access logs) ------------------------------------------------------------------
    "aws:s3/bucket:Bucket": Shape(
        id=lambda c: c.physical,
        name_key="bucket",
        max_name=63,
        outputs=lambda c: {
            "arn": f"arn:{PARTITION}:s3:::{c.physical}",
            "bucket": c.physical,
            "bucketDomainName": f"{c.physical}.s3.{DNS_SUFFIX}",
            "bucketRegionalDomainName": f"{c.physical}.s3.{c.region}.{DNS_SUFFIX}",
            "hostedZoneId": "Z3AQBSTGFYJSTF",
            "region": c.region,
        },
    ),
    "aws:s3/bucketPolicy:BucketPolicy": _attached("bucket"),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _attached("bucket"),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _attached("bucket"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _attached("bucket"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _attached("bucket"),
    "aws:s3/bucketVersioning:BucketVersioning": _attached("bucket"),
    # --- mesh ----------------------------------------------------------------------------------
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": Shape(
        id=lambda c: f"ns-{c.hex(16)}",
        outputs=lambda c: {
            "arn": c.arn("servicediscovery", f"namespace/ns-{c.hex(16)}"),
            "hostedZone": f"Z{c.hex(20).upper()}",
        },
    ),
    "aws:servicediscovery/service:Service": Shape(
        id=lambda c: f"srv-{c.hex(16)}",
        outputs=lambda c: {"arn": c.arn("servicediscovery", f"service/srv-{c.hex(16)}")},
    ),
    "aws:acmpca/certificateAuthority:CertificateAuthority": Shape(
        id=lambda c: c.arn("acm-pca", f"certificate-authority/{c.uuid()}"),
        name_key=None,
        outputs=lambda c: {
            "arn": c.arn("acm-pca", f"certificate-authority/{c.uuid()}"),
            "certificateSigningRequest": _pem("CERTIFICATE REQUEST", c.hex(40)),
            "status": "PENDING_CERTIFICATE",
        },
    ),
    # Issued certificates (this row and LocallySignedCert): a re-issue (any input changed, e.g. the
    # validity or the CSR) gets a new serial and PEM, as from a real CA; the same inputs, the same values.
    "aws:acmpca/certificate:Certificate": Shape(
        id=lambda c: f"{c.inputs.get('certificateAuthorityArn', '')}/certificate/{_issued(c, 32)}",
        name_key=None,
        outputs=lambda c: {
            "arn": f"{c.inputs.get('certificateAuthorityArn', '')}/certificate/{_issued(c, 32)}",
            "certificate": _pem("CERTIFICATE", _issued(c, 40)),
            "certificateChain": "",
        },
    ),
    "aws:acmpca/certificateAuthorityCertificate:CertificateAuthorityCertificate": _attached("certificateAuthorityArn"),
    "aws:acmpca/permission:Permission": Shape(id=lambda c: c.hex(12), name_key=None),
    "tls:index/privateKey:PrivateKey": Shape(
        id=lambda c: c.hex(40),
        name_key=None,
        outputs=lambda c: {
            "privateKeyPem": _pem("PRIVATE KEY", c.hex(40)),
            "privateKeyPemPkcs8": _pem("PRIVATE KEY", c.hex(40)),
            "publicKeyPem": _pem("PUBLIC KEY", c.hex(40)),
            "publicKeyFingerprintSha256": f"SHA256:{c.hex(43)}",
            "publicKeyOpenssh": f"ecdsa-sha2-nistp256 AAAA{c.hex(40)}",
        },
    ),
    "tls:index/selfSignedCert:SelfSignedCert": Shape(
        id=lambda c: str(int(c.hex(16), 16)),
        name_key=None,
        outputs=lambda c: {
            "certPem": _pem("CERTIFICATE", c.hex(40)),
            "validityStartTime": "2026-11-27T00:00:00Z",
            "validityEndTime": "2027-11-27T00:00:00Z",
            "readyForRenewal": False,
        },
    ),
    "tls:index/certRequest:CertRequest": Shape(
        id=lambda c: c.hex(40),
        name_key=None,
        outputs=lambda c: {"certRequestPem": _pem("CERTIFICATE REQUEST", c.hex(40))},
    ),
    "tls:index/locallySignedCert:LocallySignedCert": Shape(
        id=lambda c: str(int(_issued(c, 16), 16)),  # pulumi-tls: the id is the certificate's serial number
        name_key=None,
        outputs=lambda c: {
            "certPem": _pem("CERTIFICATE", _issued(c, 40)),
            "validityStartTime": "2026-11-27T00:00:00Z",
            "validityEndTime": "2026-12-27T00:00:00Z",
            "readyForRenewal": False,
        },
    ),
    "random:index/randomPassword:RandomPassword": Shape(
        id=lambda c: "none", name_key=None, outputs=lambda c: {"result": f"mock-{c.hex(24)}"}
    ),
}


def _issued(c: Ctx, length: int) -> str:
    """A stable hash of the resource AND its inputs (for values a real provider derives anew on replacement)."""
    return _digest(c.seed, json.dumps(c.inputs, sort_keys=True, default=str), length=length)


def _image_digest(c: Ctx) -> str:
    return f"sha256:{_issued(c, 64)}"


def _pem(label: str, body: str) -> str:
    return f"-----BEGIN {label}-----\nMOCK{body}\n-----END {label}-----\n"


def _awsx_vpc_outputs(c: Ctx) -> dict[str, Any]:
    zones = c.inputs.get("availabilityZoneNames") or [
        _az(c, i) for i in range(int(c.inputs.get("numberOfAvailabilityZones", 2)))
    ]
    tiers = {str(s.get("type", "")).lower(): s for s in c.inputs.get("subnetSpecs", []) or []} or {
        "public": {},
        "private": {},
    }
    vpc_id = f"vpc-{c.hex()}"
    ids = {tier: [f"subnet-{_digest(c.seed, tier, z)}" for z in zones] for tier in tiers}
    nat = (c.inputs.get("natGateways") or {}).get("strategy", "OnePerAz")
    nat_count = {"None": 0, "Single": 1}.get(nat, len(zones))
    return {
        "vpcId": vpc_id,
        "publicSubnetIds": ids.get("public", []),
        "privateSubnetIds": ids.get("private", []),
        "isolatedSubnetIds": ids.get("isolated", []),
        "natGatewayIds": [f"nat-{_digest(c.seed, 'nat', str(i))}" for i in range(nat_count)],
        "subnetLayout": [{"type": t.capitalize(), "cidrMask": s.get("cidrMask")} for t, s in tiers.items()],
    }


INVOKES: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda args, region: {
        "accountId": ACCOUNT_ID,
        "arn": f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/ci-preview/session",
        "userId": "AROAEXAMPLEPREVIEW:session",
        "id": ACCOUNT_ID,
    },
    "aws:index/getRegion:getRegion": lambda args, region: {
        "name": region,
        "region": region,
        "id": region,
        "description": region,
        "endpoint": f"ec2.{region}.{DNS_SUFFIX}",
    },
    "aws:index/getPartition:getPartition": lambda args, region: {
        "partition": PARTITION,
        "dnsSuffix": DNS_SUFFIX,
        "id": PARTITION,
        "reverseDnsPrefix": "com.amazonaws",
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda args, region: {
        "names": [f"{region}{s}" for s in "abcdef"],
        "zoneIds": [f"use1-az{i}" for i in range(1, 7)],
        "id": region,
        "groupNames": [region],
    },
    # Docker credentials for the account's registry: AWS answers user "AWS" and a 12-hour token.
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": lambda args, region: {
        "authorizationToken": "QVdTOm1vY2stZWNyLXRva2Vu",
        "userName": "AWS",
        "password": "mock-ecr-token",
        "proxyEndpoint": f"https://{args.get('registryId') or ACCOUNT_ID}.dkr.ecr.{region}.{DNS_SUFFIX}",
        "expiresAt": "2026-11-29T18:00:00Z",
        "id": region,
    },
    "aws:elb/getServiceAccount:getServiceAccount": lambda args, region: {
        "arn": f"arn:{PARTITION}:iam::127311923021:root",
        "id": "127311923021",
    },
}


class AwsMocks(pulumi.runtime.Mocks):
    """Answers RegisterResource and Invoke like AWS would, from `RESOURCE_SHAPES` and `INVOKES`."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom and args.typ not in RESOURCE_SHAPES:
            return None, {}  # a local ComponentResource: nothing to answer
        shape = RESOURCE_SHAPES.get(args.typ)
        if shape is None:
            raise MockGap(
                f"offline mocks have no row for resource type {args.typ!r} ({args.name}); "
                "add one to RESOURCE_SHAPES in offline/mocks.py"
            )
        inputs = dict(args.inputs)
        physical = str(inputs.get(shape.name_key) or "") if shape.name_key else ""
        if shape.name_key and not physical:
            physical = f"{args.name}-{_digest(args.typ, args.name, length=7)}"[: shape.max_name]
        ctx = Ctx(
            name=args.name,
            physical=physical or args.name,
            region=self.region,
            inputs=inputs,
            seed=f"{args.typ}::{args.name}",
        )
        resource_id = shape.id(ctx)
        state = {**(inputs if shape.echo_inputs else {}), **shape.outputs(ctx)}
        if shape.name_key and shape.name_key not in inputs:
            state[shape.name_key] = physical
        if "region" not in state and args.typ.startswith("aws:") and args.custom:
            state["region"] = self.region
        if "tags" in inputs and shape.echo_inputs:
            state["tagsAll"] = inputs["tags"]
        return resource_id or None, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        answer = INVOKES.get(args.token)
        if answer is None:
            raise MockGap(f"offline mocks cannot answer invoke {args.token!r}; add it to INVOKES in offline/mocks.py")
        return answer(args.args, self.region), []


class MockGap(Exception):
    """The program used a resource type or function the offline mocks do not model yet."""
