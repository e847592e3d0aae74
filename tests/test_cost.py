"""The cost estimate (offline/cost.py): three hand-computed cases to the cent, every stack priced, unknown
types listed (never silently zero), the compare delta, the preview's summary and --refresh-prices against
recorded Price List API answers (botocore Stubber)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from offline import cost
from offline.__main__ import main
from offline.export import preview_json, write_json
from offline.plan import Plan, PlannedResource
from tests.conftest import only, preview


@pytest.fixture
def cached_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's program runs come from the session's cached previews (the program is deterministic;
    test_diagram.py checks a second, independent run gives the same plan)."""
    import offline.runtime

    monkeypatch.setattr(offline.runtime, "run_program", lambda _project_dir, stack: preview(stack))


def _estimate(stack: str, plan: Plan | None = None) -> cost.Estimate:
    result = preview(stack)
    return cost.estimate(plan or result.plan, region="us-east-1", usage=cost.usage_from_config(result.config))


def _monthly(result: cost.Estimate, resource_name: str) -> float:
    lines = [line for line in result.lines if line.urn.endswith(f"::{resource_name}")]
    assert lines, f"no cost line for {resource_name}"
    return cost.cents(sum((line.monthly for line in lines), Decimal(0)))


# --- three cases computed by hand (us-east-1 list prices of offline/prices.json) -------------------------


def test_fargate_service_by_hand() -> None:
    # prod order: 1 vCPU / 2 GB ARM64, desiredCount 3, all on FARGATE (prod capacity onDemand), 730 h:
    #   vCPU  3 * 1 * 730 * 0.03238 = 70.9122
    #   GB    3 * 2 * 730 * 0.00356 = 15.5928
    #                                 86.5050 -> $86.51 (half up)
    assert _monthly(_estimate("prod"), "ms-prod-order-service") == 86.51


def test_fargate_spot_split_by_hand() -> None:
    # staging order: 0.5 vCPU / 1 GB X86_64, desiredCount 2, FARGATE base 1 weight 1 + FARGATE_SPOT weight 3:
    # on-demand 1 + 1 * 1/4 = 1.25 tasks, Spot 0.75 tasks at 30% of on-demand (spotDiscountPercent 70):
    #   on-demand vCPU  1.25 * 0.5 * 730 * 0.04048       = 18.46890
    #   on-demand GB    1.25 * 1   * 730 * 0.004445      =  4.0560625
    #   Spot vCPU       0.75 * 0.5 * 730 * 0.04048 * 0.3 =  3.32442
    #   Spot GB         0.75 * 1   * 730 * 0.004445 * 0.3 = 0.73009125
    #                                                      26.57947375 -> $26.58
    assert _monthly(_estimate("staging"), "ms-staging-order-service") == 26.58
    assert cost.fargate_split(
        2,
        [
            {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
            {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 3},
        ],
    ) == (1.25, 0.75)


def test_rds_instance_by_hand() -> None:
    # prod users DB: PostgreSQL db.r7g.large Multi-AZ 0.478/h * 730 h = 348.94, 100 GB gp3 Multi-AZ * 0.23 = 23.00
    assert _monthly(_estimate("prod"), "ms-prod-user-users-db") == 371.94


def test_nat_gateways_by_hand() -> None:
    # prod: 3 AZs, one NAT gateway each: 3 * 730 h * 0.045 = 98.55; 100 GB processed each (prod usage config):
    # 300 GB * 0.045 = 13.50; one public IPv4 address each: 3 * 730 h * 0.005 = 10.95. Total 123.00.
    result = _estimate("prod")
    vpc = [line for line in result.lines if line.type == "awsx:ec2:Vpc"]
    assert {line.price_key: cost.cents(line.monthly) for line in vpc} == {
        "nat.hour": 98.55,
        "nat.gb": 13.50,
        "public_ipv4.hour": 10.95,
    }
    # dev has a single NAT gateway and 10 GB: 32.85 + 0.45 + 3.65 = 36.95.
    dev = [line.monthly for line in _estimate("dev").lines if line.type == "awsx:ec2:Vpc"]
    assert cost.cents(sum(dev, Decimal(0))) == 36.95


# --- every stack, every resource accounted for ------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_prints_an_estimate_with_every_resource_accounted_for(stack: str) -> None:
    result = _estimate(stack)
    assert result.total > 0
    assert result.unknown == {}, result.unknown
    priced = {line.urn for line in result.lines}
    custom = [r for r in preview(stack).plan.resources if r.custom or r.remote]
    for r in custom:
        if r.type.startswith("pulumi:"):
            continue
        assert r.urn in priced or r.type in result.free, f"{r.urn} is neither priced nor listed as free"
    # The list of priced types, where the stack has them.
    types = {line.type for line in result.lines}
    expected = {
        "aws:ecs/service:Service",
        "awsx:ec2:Vpc",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:rds/instance:Instance",
        "aws:dynamodb/table:Table",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:kms/key:Key",
        "aws:secretsmanager/secret:Secret",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:ecs/cluster:Cluster",
        "aws:wafv2/webAcl:WebAcl",
        "aws:apigatewayv2/api:Api",
        "aws:cloudwatch/eventBus:EventBus",
        "aws:sqs/queue:Queue",
        "aws:sns/topic:Topic",
        "aws:lambda/function:Function",
    }
    if stack != "dev":
        expected.add("aws:acmpca/certificateAuthority:CertificateAuthority")
    assert expected <= types, expected - types
    assert set(result.by("service")) >= {"user", "order", "payment", "inventory", "notification", "platform"}


def test_prod_costs_more_than_staging_more_than_dev() -> None:
    assert _estimate("prod").total > _estimate("staging").total > _estimate("dev").total


def test_unknown_types_are_listed_never_priced_at_zero() -> None:
    plan = copy.deepcopy(preview("dev").plan)
    stack_urn = next(r.urn for r in plan.resources if r.type == "pulumi:pulumi:Stack")
    strange = PlannedResource(
        urn=f"{stack_urn.split('::pulumi:pulumi:Stack')[0]}::aws:opensearch/domain:Domain::search",
        type="aws:opensearch/domain:Domain",
        name="search",
        custom=True,
        parent=stack_urn,
    )
    plan.resources.append(strange)
    rds = only(plan, "aws:rds/instance:Instance", "ms-dev-user-users-db")
    rds.inputs = {**rds.inputs, "instanceClass": "db.x9.huge"}
    before = _estimate("dev")
    after = _estimate("dev", plan)
    assert after.unknown["aws:opensearch/domain:Domain"] == [strange.urn]
    missing = "aws:rds/instance:Instance (no price 'rds.postgres.db.x9.huge.single_az.hour' in the table)"
    assert after.unknown[missing] == [rds.urn]
    assert all(line.urn != strange.urn for line in after.lines)
    assert after.total < before.total  # the unpriced instance hours are missing, and the report says so
    table = cost.render_table(after)
    assert "UNKNOWN to the price table (not in the estimate):" in table
    assert "aws:opensearch/domain:Domain: 1 (search)" in table
    assert "resource(s) of unknown type not priced" in cost.summary_line(after)


def test_price_table_records_unit_date_and_source_for_every_price() -> None:
    document = json.loads(cost.PRICES_FILE.read_text())
    for region, entries in document["regions"].items():
        for key, entry in entries.items():
            assert entry["price"] > 0, key
            assert entry["unit"] and entry["date"] and entry["source"].startswith("AWS"), (region, key)
            assert entry["query"]["filters"][0] == {"Field": "regionCode", "Type": "EQUALS", "Value": region}


def test_a_region_without_prices_is_one_clear_error() -> None:
    with pytest.raises(cost.CostError, match="no prices for region 'eu-west-9'"):
        cost.estimate(preview("dev").plan, region="eu-west-9")


# --- output ---------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("cached_runs")
def test_cli_table_prints_assumptions_and_what_is_not_priced(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    total = _estimate("dev").total
    assert f"Total for environment 'dev': {cost.money(total)}/month" in out
    assert "Usage assumptions (microservices:usage in Pulumi.<stack>.yaml):" in out
    assert "  natProcessedGb: 10.0" in out  # from Pulumi.dev.yaml
    assert "  spotDiscountPercent: 70.0" in out
    assert "no charge of their own:" in out and "unknown resource types: none" in out
    assert "fargate.vcpu_hour.x86_64: 0.04048 USD per vCPU-hour (2026-11-29; AWS public price list" in out


@pytest.mark.usefixtures("cached_runs")
def test_cli_json_and_compare_delta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = preview("dev")
    other = tmp_path / "dev-plan.json"
    write_json(other, preview_json(dev.plan, dev.config))
    assert main(["cost", "--stack", "prod", "--format", "json", "--compare", str(other)]) == 0
    document = json.loads(capsys.readouterr().out)
    prod_total, dev_total = _estimate("prod").total, _estimate("dev").total
    assert document["monthlyTotal"] == cost.cents(prod_total)
    assert document["compare"]["before"] == cost.cents(dev_total)
    assert document["compare"]["delta"] == cost.cents(prod_total - dev_total)
    assert document["notPriced"]["unknownTypes"] == {}
    assert main(["cost", "--stack", "prod", "--compare", str(other)]) == 0
    out = capsys.readouterr().out
    assert f"{cost.delta(prod_total - dev_total)}/month" in out and out.count("+$") >= 1


def test_compare_of_a_plan_with_itself_is_zero(tmp_path: Path) -> None:
    dev = preview("dev")
    path = tmp_path / "plan.json"
    write_json(path, preview_json(dev.plan, dev.config))
    current = _estimate("dev")
    again = cost._load_other(path)
    assert again.total == current.total
    assert "±$0.00/month" in cost.render_compare(current, again, "base")


@pytest.mark.usefixtures("cached_runs")
def test_preview_prints_the_cost_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "--stack", "dev", "--no-policy"]) == 0
    out = capsys.readouterr().out
    assert cost.summary_line(_estimate("dev")) in out


# --- --refresh-prices through the Price List API (recorded answers) ----------------------------------------


def _product(sku: str, usagetype: str, usd: str) -> str:
    """A GetProducts PriceList item as AWS returns it (a JSON string)."""
    return json.dumps(
        {
            "product": {"sku": sku, "productFamily": "Compute", "attributes": {"usagetype": usagetype}},
            "serviceCode": "AmazonECS",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "hours",
                                "beginRange": "0",
                                "endRange": "Inf",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                    }
                }
            },
        }
    )


def test_refresh_prices_reads_the_price_list_api(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    document = json.loads(cost.PRICES_FILE.read_text())
    entries = document["regions"]["us-east-1"]
    document["regions"]["us-east-1"] = {k: entries[k] for k in ("fargate.vcpu_hour.arm64", "nat.hour")}
    table.write_text(json.dumps(document))
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        fargate = entries["fargate.vcpu_hour.arm64"]["query"]
        # Two pages; the Windows product matches CONTAINS but not the exact usage type, and is ignored.
        stub.add_response(
            "get_products",
            {
                "PriceList": [_product("WIN1", "USE1-Fargate-Windows-ARM-vCPU-Hours:perCPU", "0.5")],
                "NextToken": "page2",
                "FormatVersion": "aws_v1",
            },
            {"ServiceCode": "AmazonECS", "Filters": fargate["filters"], "MaxResults": 100},
        )
        stub.add_response(
            "get_products",
            {
                "PriceList": [_product("ARM1", "USE1-Fargate-ARM-vCPU-Hours:perCPU", "0.0311")],
                "FormatVersion": "aws_v1",
            },
            {"ServiceCode": "AmazonECS", "Filters": fargate["filters"], "MaxResults": 100, "NextToken": "page2"},
        )
        nat = entries["nat.hour"]["query"]
        stub.add_response(
            "get_products",
            {"PriceList": [], "FormatVersion": "aws_v1"},
            {"ServiceCode": "AmazonEC2", "Filters": nat["filters"], "MaxResults": 100},
        )
        refreshed, kept = cost.refresh_prices(client, region="us-east-1", path=table, today="2027-01-02")
        stub.assert_no_pending_responses()
    assert refreshed == ["fargate.vcpu_hour.arm64"] and kept == ["nat.hour"]
    written = json.loads(table.read_text())["regions"]["us-east-1"]
    assert written["fargate.vcpu_hour.arm64"]["price"] == 0.0311
    assert written["fargate.vcpu_hour.arm64"]["date"] == "2027-01-02"
    assert written["fargate.vcpu_hour.arm64"]["source"] == "AWS Price List API (pricing:GetProducts) AmazonECS SKU ARM1"
    assert written["nat.hour"] == entries["nat.hour"]  # not answered: kept as it was, and reported
    prices = cost.load_prices("us-east-1", table)
    assert prices["fargate.vcpu_hour.arm64"].price == 0.0311


def test_refresh_adds_a_region_by_rewriting_the_region_filter(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    document = json.loads(cost.PRICES_FILE.read_text())
    document["regions"]["us-east-1"] = {"nat.hour": document["regions"]["us-east-1"]["nat.hour"]}
    table.write_text(json.dumps(document))
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        filters: list[dict[str, Any]] = [
            dict(f) for f in document["regions"]["us-east-1"]["nat.hour"]["query"]["filters"]
        ]
        filters[0]["Value"] = "eu-west-1"
        stub.add_response(
            "get_products",
            {"PriceList": [_product("EU1", "EU-NatGateway-Hours", "0.048")], "FormatVersion": "aws_v1"},
            {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 100},
        )
        refreshed, _ = cost.refresh_prices(client, region="eu-west-1", path=table, today="2027-01-02")
    assert refreshed == ["nat.hour"]
    assert cost.load_prices("eu-west-1", table)["nat.hour"].price == 0.048


def test_pull_request_workflow_comments_the_cost_delta_and_the_diagram() -> None:
    import yaml

    root = Path(__file__).resolve().parent.parent
    job = yaml.safe_load((root / ".github" / "workflows" / "pull-request.yml").read_text())["jobs"]["cost"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    runs = [step.get("run", "") for step in job["steps"]]
    assert 'cost-diagram-comment.sh "${{ github.event.pull_request.base.sha }}"' in " ".join(runs)
    assert any(r.startswith("gh pr comment") and "--body-file comment.md" in r for r in runs)
    script = (root / ".github" / "scripts" / "cost-diagram-comment.sh").read_text()
    assert "-m offline cost --stack" in script and "--compare" in script
    assert "-m offline diagram --stack prod --format mermaid" in script and "--format svg" in script
