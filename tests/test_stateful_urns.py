"""The URNs of stateful resources are a contract: pinned per stack in `tests/golden/stateful_urns.json`.

A resource's URN (`urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>`) is its identity to
the Pulumi engine. Renaming it, changing its type token or moving it under a parent of another type
makes the next `pulumi up` DELETE the old resource and CREATE a new one: for a database, a table, a
key, a secret, a queue with messages in it or a log group, that is data loss. So:

* every stateful URN in the golden file must still be planned (a refactor that really must change
  one declares `aliases=[pulumi.Alias(...)]` naming the old parent/type/name on the resource, so the
  engine moves the resource instead of replacing it, then records the new URN here and says why in
  the commit);
* every stateful URN planned must be in the golden file (additions are recorded deliberately);
* every resource type the program plans is classified below as stateful or not, so a new type
  (say a Step Functions state machine) cannot slip past this test unclassified.

To record a deliberate addition (or an aliased rename), regenerate the file and review its diff:

    .venv/bin/python -m tests.test_stateful_urns
    git diff tests/golden/stateful_urns.json
"""

from __future__ import annotations

import json

import pytest

from offline.plan import Plan, PlannedResource
from tests.conftest import ROOT, STACKS, only, preview

GOLDEN = ROOT / "tests" / "golden" / "stateful_urns.json"

STATEFUL_TYPES = frozenset(
    {
        # Databases and caches (data).
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:rds/clusterInstance:ClusterInstance",
        "aws:dynamodb/table:Table",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/cluster:Cluster",
        "aws:elasticache/user:User",
        "aws:elasticache/userGroup:UserGroup",
        # Keys, secrets, certificates and certificate authorities (identity).
        "aws:kms/key:Key",
        "aws:secretsmanager/secret:Secret",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:acm/certificate:Certificate",
        "aws:acmpca/certificateAuthority:CertificateAuthority",
        "aws:acmpca/certificate:Certificate",
        "tls:index/privateKey:PrivateKey",
        "tls:index/selfSignedCert:SelfSignedCert",
        "tls:index/locallySignedCert:LocallySignedCert",
        "random:index/randomPassword:RandomPassword",
        # Stored objects, messages, events and logs.
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:sqs/queue:Queue",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/eventBus:EventBus",
        "aws:cloudwatch/eventArchive:EventArchive",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ecr/repository:Repository",
        "aws:schemas/registry:Registry",
        # Data patterns: a saga's state machine holds its running executions and their history (a
        # replacement orphans every in-flight order); an outbox pipe holds its position in the event
        # store's stream (a new pipe starts again at TRIM_HORIZON and republishes up to 24 h of events).
        "aws:sfn/stateMachine:StateMachine",
        "aws:pipes/pipe:Pipe",
    }
)
"""Resources whose replacement loses data, history or identity (what they hold is not in the program)."""

STATELESS_TYPES = frozenset(
    {
        "pulumi:pulumi:Stack",
        "awsx:ec2:Vpc",
        "aws:acm/certificateValidation:CertificateValidation",
        "aws:acmpca/certificateAuthorityCertificate:CertificateAuthorityCertificate",
        "aws:acmpca/permission:Permission",
        "aws:apigatewayv2/api:Api",
        "aws:apigatewayv2/authorizer:Authorizer",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/stage:Stage",
        "aws:apigatewayv2/vpcLink:VpcLink",
        "aws:appautoscaling/policy:Policy",
        "aws:appautoscaling/target:Target",
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:codedeploy/application:Application",
        "aws:codedeploy/deploymentGroup:DeploymentGroup",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ecs/cluster:Cluster",
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "aws:ecs/service:Service",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        # A built image is rebuilt from the repository's sources; what it produced lives in the
        # (stateful) ECR repository under an immutable tag.
        "docker-build:index:Image",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:elasticache/parameterGroup:ParameterGroup",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:kms/alias:Alias",
        "aws:lambda/alias:Alias",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:lambda/function:Function",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:lambda/permission:Permission",
        "aws:lb/listener:Listener",
        "aws:lb/listenerRule:ListenerRule",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:route53/record:Record",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:schemas/schema:Schema",
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "aws:secretsmanager/secretRotation:SecretRotation",
        "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",
        "aws:servicediscovery/service:Service",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy",
        "aws:sqs/redrivePolicy:RedrivePolicy",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:wafv2/webAcl:WebAcl",
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
        "tls:index/certRequest:CertRequest",
    }
)
"""Resources a replacement only re-creates from the program (configuration, wiring, policies, compute)."""


def engine_urn(plan: Plan, resource: PlannedResource, by_urn: dict[str, PlannedResource]) -> str:
    """The URN the Pulumi engine gives `resource`: `urn:pulumi:<stack>::<project>::<qualified type>::<name>`,
    where the qualified type is every ancestor's type below the root stack, then its own, joined by `$`
    (https://www.pulumi.com/docs/iac/concepts/resources/names/#urns).

    The mock monitor's URNs (`plan.resources[i].urn`, from `pulumi.runtime.mocks.make_urn`) keep only
    the immediate parent's type, so moving a data store to a component of another type would not
    change them; computing the engine's form from the recorded parents does catch it."""
    types = []
    current: PlannedResource | None = resource
    while current is not None and current.type != "pulumi:pulumi:Stack":
        types.append(current.type)
        current = by_urn.get(current.parent) if current.parent else None
    return f"urn:pulumi:{plan.stack}::{plan.project}::{'$'.join(reversed(types))}::{resource.name}"


def stateful_urns(plan: Plan) -> list[str]:
    by_urn = plan.by_urn()
    return sorted(engine_urn(plan, r, by_urn) for r in plan.resources if r.type in STATEFUL_TYPES)


def _golden() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


def _write_golden() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    data = {stack: stateful_urns(preview(stack).plan) for stack in STACKS}
    GOLDEN.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def test_stateful_and_stateless_types_do_not_overlap() -> None:
    assert not STATEFUL_TYPES & STATELESS_TYPES


@pytest.mark.parametrize("stack", STACKS)
def test_every_planned_type_is_classified(stack: str) -> None:
    plan = preview(stack).plan
    unclassified = sorted(
        {r.type for r in plan.resources if r.custom or r.remote or r.type == "pulumi:pulumi:Stack"}
        - STATEFUL_TYPES
        - STATELESS_TYPES
    )
    assert not unclassified, (
        f"stack {stack}: resource types {unclassified} are not classified: add each to STATEFUL_TYPES (its "
        "replacement loses data or identity; then record its URNs, see the module docstring) or STATELESS_TYPES "
        "in tests/test_stateful_urns.py"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_no_stateful_urn_disappears_or_changes(stack: str) -> None:
    planned = set(stateful_urns(preview(stack).plan))
    missing = [urn for urn in _golden()[stack] if urn not in planned]
    assert not missing, (
        f"stack {stack}: {len(missing)} stateful resources would be REPLACED (their URN is no longer planned; "
        "a rename, a new type token or a new parent type changes it). Keep the URN, or add `aliases` to the "
        "resource and update tests/golden/stateful_urns.json deliberately:\n  " + "\n  ".join(missing)
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_stateful_urn_is_recorded(stack: str) -> None:
    recorded = set(_golden()[stack])
    new = [urn for urn in stateful_urns(preview(stack).plan) if urn not in recorded]
    assert not new, (
        f"stack {stack}: {len(new)} stateful resources are not recorded in tests/golden/stateful_urns.json; "
        "record them deliberately (`python -m tests.test_stateful_urns`, then review the diff):\n  " + "\n  ".join(new)
    )


def test_golden_file_covers_every_stack_and_every_kind_of_data() -> None:
    golden = _golden()
    assert sorted(golden) == sorted(STACKS)
    for stack, urns in golden.items():
        types = {urn.split("::")[2].rsplit("$", 1)[-1] for urn in urns}
        # The data each environment must keep across refactors: if one of these vanished from the golden
        # file, the pin would no longer protect it.
        for required in (
            "aws:rds/instance:Instance",
            "aws:dynamodb/table:Table",
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "aws:kms/key:Key",
            "aws:secretsmanager/secret:Secret",
            "aws:sqs/queue:Queue",
            "aws:cloudwatch/eventArchive:EventArchive",
        ):
            assert required in types, f"{stack}: no {required} pinned in {GOLDEN}"


def test_pin_sees_the_whole_parent_chain() -> None:
    """A table is a child of its DynamoTable component, itself a child of the owning FargateMicroservice:
    the pinned URN names both, so re-parenting the store component (not only the table) is caught."""
    urns = [u for u in _golden()["dev"] if u.endswith("::ms-dev-order-orders-table")]
    assert urns == [
        "urn:pulumi:dev::microservices::microservices:service:FargateMicroservice$microservices:data:DynamoTable"
        "$aws:dynamodb/table:Table::ms-dev-order-orders-table"
    ]
    plan = preview("dev").plan
    table = only(plan, "aws:dynamodb/table:Table", "-orders-table")
    store = plan.by_urn()[table.parent]
    stack = only(plan, "pulumi:pulumi:Stack")
    moved = PlannedResource(**{**store.__dict__, "parent": stack.urn})
    resources = [moved if r is store else r for r in plan.resources]
    missing = set(_golden()["dev"]) - set(stateful_urns(Plan(plan.project, plan.stack, resources)))
    assert any(u.endswith("::ms-dev-order-orders-table") for u in missing), missing


if __name__ == "__main__":
    _write_golden()
    print(f"wrote {GOLDEN}; review it with `git diff {GOLDEN.relative_to(ROOT)}`")
