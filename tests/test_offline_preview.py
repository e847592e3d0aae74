"""The offline preview: records what the engine would see, prints it like `pulumi preview`, writes the
CLI's JSON shapes, and reads them back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from offline.export import SECRET_SIG, SECRET_SIG_KEY, load_plan, preview_json, stack_export
from offline.mocks import RESOURCE_SHAPES
from offline.plan import Plan
from offline.render import render_preview
from offline.runtime import OfflineError, read_stack_files, run_function, run_program
from tests.conftest import ROOT, preview
from tests.secrets import ciphertext

ARN = re.compile(r"^arn:aws:[a-z0-9-]+:([a-z0-9-]*):(\d{12})?:.+$")


def test_every_stack_previews_with_a_single_rooted_tree(stack_plan: Plan) -> None:
    by_urn = stack_plan.by_urn()
    roots = [r for r in stack_plan.resources if not r.parent]
    assert [r.type for r in roots] == ["pulumi:pulumi:Stack"]
    for r in stack_plan.resources:
        assert not r.parent or r.parent in by_urn, f"{r.urn}: parent {r.parent} was never registered"
        for dep in r.dependencies:
            assert dep in by_urn, f"{r.urn}: depends on unknown {dep}"
        if not r.custom and r.type != "pulumi:pulumi:Stack" and not r.remote:
            assert re.fullmatch(r"microservices:[a-z]+:[A-Z][A-Za-z]+", r.type), r.urn


def test_urns_are_unique_and_named_per_environment(stack_plan: Plan) -> None:
    urns = [r.urn for r in stack_plan.resources]
    assert len(urns) == len(set(urns))
    env = stack_plan.stack
    for r in stack_plan.resources:
        assert r.urn.startswith(f"urn:pulumi:{env}::microservices::"), r.urn
        if r.type != "pulumi:pulumi:Stack":
            assert r.name.startswith(f"ms-{env}"), f"{r.urn}: child names carry the environment prefix"


def test_outputs_are_aws_shaped(dev_plan: Plan) -> None:
    key = next(r for r in dev_plan.resources if r.type == "aws:kms/key:Key")
    match = ARN.match(key.outputs["arn"])
    assert match and match.group(1) == "us-east-1" and match.group(2) == "123456789012", key.outputs["arn"]
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", dev_plan.outputs["vpcId"])
    assert all(re.fullmatch(r"subnet-[0-9a-f]{17}", s) for s in dev_plan.outputs["privateSubnetIds"])
    assert len(dev_plan.outputs["privateSubnetIds"]) == 2
    assert len(preview("prod").plan.outputs["privateSubnetIds"]) == 3


def test_every_arn_in_every_output_is_well_formed(stack_plan: Plan) -> None:
    def arns(value: object) -> list[str]:
        if isinstance(value, str):
            return [value] if value.startswith("arn:") else []
        if isinstance(value, dict):
            return [a for v in value.values() for a in arns(v)]
        if isinstance(value, list):
            return [a for v in value for a in arns(v)]
        return []

    for r in stack_plan.resources:
        for arn in arns(r.outputs):
            # Real exceptions to the account field: S3 (none), IAM (global) and API Gateway's Lambda
            # integration URIs (arn:aws:apigateway:<region>:lambda:path/...).
            assert (
                ARN.match(arn)
                or arn.startswith("arn:aws:s3:::")
                or ":iam::" in arn
                or re.match(r"^arn:aws:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/arn:aws:lambda:", arn)
            ), f"{r.urn}: {arn}"


def test_recorded_dependency_lists_are_sorted_so_two_runs_export_the_same_lists() -> None:
    """The SDK collects a resource's dependencies in sets, whose order follows the string hash seed of
    each run; the recorder sorts them, so exports of one program differ at most in resource order."""

    def program() -> None:
        queues = [aws.sqs.Queue(f"q{i}") for i in range(12)]
        aws.sqs.Queue(
            "last",
            tags=pulumi.Output.all(*[q.arn for q in queues]).apply(lambda arns: {"upstream": str(len(arns))}),
            opts=pulumi.ResourceOptions(depends_on=queues[:6]),
        )

    plan = run_function(program).plan
    [last] = [r for r in plan.resources if r.name == "last"]
    queues = sorted(r.urn for r in plan.resources if r.type == "aws:sqs/queue:Queue" and r.name != "last")
    assert len(queues) == 12
    assert last.dependencies == queues, last.dependencies
    assert last.property_dependencies["tags"] == queues, last.property_dependencies
    for r in preview("dev").plan.resources:
        assert r.dependencies == sorted(r.dependencies), r.urn
        assert all(urns == sorted(urns) for urns in r.property_dependencies.values()), r.urn


def test_recorder_keeps_parents_dependencies_and_property_dependencies(dev_plan: Plan) -> None:
    by_name = {(r.type, r.name): r for r in dev_plan.resources}
    flow_log = by_name[("aws:ec2/flowLog:FlowLog", "ms-dev-flow-log")]
    group = by_name[("aws:cloudwatch/logGroup:LogGroup", "ms-dev-flow-logs")]
    role = by_name[("aws:iam/role:Role", "ms-dev-flow-logs-role")]
    network = by_name[("microservices:network:Network", "ms-dev")]
    assert flow_log.parent == network.urn
    assert group.urn in flow_log.property_dependencies["logDestination"]
    assert role.urn in flow_log.property_dependencies["iamRoleArn"]
    assert {group.urn, role.urn} <= set(flow_log.dependencies)
    vpc = by_name[("awsx:ec2:Vpc", "ms-dev-vpc")]
    assert vpc.remote and not vpc.custom
    assert flow_log.inputs["vpcId"] == vpc.outputs["vpcId"]


def test_the_remote_vpc_receives_the_environment_nat_strategy() -> None:
    def vpc_inputs(stack: str) -> dict:
        return next(r for r in preview(stack).plan.resources if r.type == "awsx:ec2:Vpc").inputs

    assert vpc_inputs("dev")["natGateways"] == {"strategy": "Single"}
    assert vpc_inputs("prod")["natGateways"] == {"strategy": "OnePerAz"}
    assert vpc_inputs("prod")["availabilityZoneNames"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    tiers = [s["type"] for s in vpc_inputs("dev")["subnetSpecs"]]
    assert tiers == ["Public", "Private", "Isolated"]


def test_previews_are_deterministic() -> None:
    again = run_program(ROOT, "dev").plan
    first = preview("dev").plan
    assert {r.urn: (r.id, r.inputs, r.outputs) for r in again.resources} == {
        r.urn: (r.id, r.inputs, r.outputs) for r in first.resources
    }
    assert render_preview(again) == render_preview(first)


def test_secure_config_becomes_a_secret_placeholder(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: demo\nruntime: python\n")
    (tmp_path / "Pulumi.s.yaml").write_text(
        f"config:\n  aws:region: eu-west-1\n  demo:token:\n    secure: {ciphertext('t0ken')}\n  plain: 3\n"
    )
    files = read_stack_files(tmp_path, "s")
    assert files.secret_keys == ["demo:token"]
    assert files.config["demo:plain"] == "3" and files.region == "eu-west-1"

    def program() -> None:
        token = pulumi.Config("demo").require_secret("token")
        aws.secretsmanager.SecretVersion(
            "v", secret_id="arn:aws:secretsmanager:eu-west-1:1:secret:x", secret_string=token
        )

    plan = run_function(program, config=files.config, secret_keys=files.secret_keys, region=files.region).plan
    version = next(r for r in plan.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"] == {SECRET_SIG_KEY: SECRET_SIG, "value": files.config["demo:token"]}
    assert preview_json(plan)["steps"][-1]["newState"]["inputs"]["secretString"] == "[secret]"
    exported = next(s for s in stack_export(plan)["deployment"]["resources"] if s["urn"] == version.urn)
    assert exported["inputs"]["secretString"][SECRET_SIG_KEY] == SECRET_SIG
    assert "value" not in exported["inputs"]["secretString"]


def test_a_type_missing_from_the_mocks_is_a_clear_error() -> None:
    assert "aws:gamelift/fleet:Fleet" not in RESOURCE_SHAPES

    def program() -> None:
        aws.gamelift.Fleet("f", build_id="b", ec2_instance_type="c5.large", name="f")

    with pytest.raises(OfflineError, match=r"no row for resource type 'aws:gamelift/fleet:Fleet' \(f\)"):
        run_function(program)


def test_preview_json_has_the_cli_shape(dev_plan: Plan) -> None:
    document = preview_json(dev_plan)
    assert document["changeSummary"] == {"create": len(document["steps"])}
    providers = [s for s in document["steps"] if s["newState"]["type"].startswith("pulumi:providers:")]
    assert {p["newState"]["type"] for p in providers} >= {"pulumi:providers:aws", "pulumi:providers:awsx"}
    for step in document["steps"]:
        assert step["op"] == "create" and step["urn"] == step["newState"]["urn"]
        state = step["newState"]
        if state["custom"] and not state["type"].startswith("pulumi:providers:"):
            assert step["provider"].startswith("urn:pulumi:dev::microservices::pulumi:providers:"), step["urn"]
    flow_log = next(s for s in document["steps"] if s["newState"]["type"] == "aws:ec2/flowLog:FlowLog")
    assert set(flow_log["newState"]) >= {"type", "inputs", "parent", "dependencies", "propertyDependencies"}


@pytest.mark.parametrize("writer", [preview_json, stack_export])
def test_both_files_read_back_into_the_same_plan(dev_plan: Plan, writer, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(writer(dev_plan)))
    loaded = load_plan(path)
    assert (loaded.project, loaded.stack) == ("microservices", "dev")

    def shape(plan: Plan) -> list[tuple]:
        return [(r.urn, r.type, r.custom, r.parent, r.dependencies, r.property_dependencies) for r in plan.resources]

    assert shape(loaded) == shape(dev_plan)


def test_rendered_tree_shows_nesting_and_summary(dev_plan: Plan) -> None:
    text = render_preview(dev_plan)
    assert text.startswith("Previewing update (dev)")
    lines = text.splitlines()
    network = next(i for i, line in enumerate(lines) if re.match(r"^ \+   [├└]─ microservices:network:Network\s", line))
    below = lines[network + 1 : network + 8]
    assert any(re.match(r"^ \+   [│ ]  [├└]─ awsx:ec2:Vpc\s+ms-dev-vpc\s+create$", line) for line in below), below
    assert f"+ {len(dev_plan.resources)} to create" in text


def test_cli_plan_file_never_shows_secure_config_in_clear(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(
        (ROOT / "Pulumi.dev.yaml").read_text() + f"  aws:secretKey:\n    secure: {ciphertext('s3cr3t')}\n"
    )
    plan_file = tmp_path / "plan.json"
    result = subprocess.run(
        [sys.executable, "-m", "offline", "preview", "--stack", "dev", "--project-dir", str(tmp_path), "--no-policy",
         "--json", str(plan_file)],
        capture_output=True, text=True, cwd=ROOT, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    config = json.loads(plan_file.read_text())["config"]
    assert config["aws:secretKey"] == "[secret]"
    assert config["microservices:environment"] == "dev"
