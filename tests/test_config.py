"""Stack configuration: every class of bad value stops the program with one line naming the stack, the
key, the value and what is allowed, before any resource is declared."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model.config import StackConfig, parse_stack_config, resolve_sizing
from model.errors import ConfigError
from model.spec import ServiceSpec, Subscription
from offline.runtime import OfflineError, run_program
from services import validate_catalog
from tests.conftest import ROOT

VALID = {"environment": "dev", "region": "us-east-1"}


def error_for(raw: dict, secret: frozenset[str] | set[str] = frozenset()) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("dev", raw, secret)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith("stack 'dev': config "), message
    return message


def test_minimal_config_gets_safe_defaults() -> None:
    config = parse_stack_config("dev", VALID)
    assert isinstance(config, StackConfig)
    assert config.network.az_count == 2
    assert config.compute.enable_execute_command is False
    assert config.base_tags() == {"Project": "microservices", "Environment": "dev", "ManagedBy": "pulumi"}


def test_missing_required_key() -> None:
    message = error_for({"region": "us-east-1"})
    assert message == "stack 'dev': config microservices:environment: is required but not set"


def test_environment_outside_allowed_values() -> None:
    message = error_for({**VALID, "environment": "qa"})
    assert 'microservices:environment = "qa"' in message
    assert "'dev', 'staging' or 'prod'" in message


def test_unknown_top_level_key() -> None:
    message = error_for({**VALID, "netwrok": {}})
    assert message.startswith("stack 'dev': config microservices:netwrok: unknown key; allowed keys: ")
    assert "microservices:network" in message


def test_unknown_nested_key_lists_allowed_keys() -> None:
    message = error_for({**VALID, "network": {"cidr": "10.0.0.0/16", "natGateway": "single"}})
    assert message.startswith("stack 'dev': config microservices:network.natGateway: unknown key;")
    assert "natGateways" in message and "azCount" in message


def test_wrong_type() -> None:
    message = error_for({**VALID, "network": {"azCount": "three"}})
    assert message.startswith("stack 'dev': config microservices:network.azCount = \"three\": ")
    assert "valid integer" in message


@pytest.mark.parametrize("count", [1, 7, 0, -2])
def test_az_count_outside_2_to_6(count: int) -> None:
    message = error_for({**VALID, "network": {"azCount": count}})
    assert f"microservices:network.azCount = {count}: " in message
    assert ("greater than or equal to 2" in message) or ("less than or equal to 6" in message)


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("10.0.0.0/33", "CIDR form"),
        ("10.0.0.1/16", "CIDR form"),
        ("not-a-cidr", "CIDR form"),
        ("10.0.0.0/8", "between /16 and /24"),
        ("8.8.0.0/16", "private"),
    ],
)
def test_invalid_cidr(cidr: str, reason: str) -> None:
    message = error_for({**VALID, "network": {"cidr": cidr}})
    assert f'microservices:network.cidr = "{cidr}": ' in message
    assert reason in message


def test_nat_strategy_lists_allowed_values() -> None:
    message = error_for({**VALID, "network": {"natGateways": "many"}})
    assert 'microservices:network.natGateways = "many"' in message and "'single' or 'onePerAz'" in message


def test_log_retention_must_be_a_cloudwatch_value() -> None:
    message = error_for({**VALID, "observability": {"logRetentionDays": 10}})
    assert "microservices:observability.logRetentionDays = 10: must be a CloudWatch Logs retention value" in message


def test_several_problems_are_counted_on_the_same_line() -> None:
    message = error_for({**VALID, "network": {"azCount": 9, "cidr": "x"}})
    assert message.endswith("(and 1 more problem)")


def test_mesh_renewal_must_be_inside_validity() -> None:
    message = error_for({**VALID, "mesh": {"certValidityHours": 48, "certRenewalHours": 48}})
    assert "microservices:mesh" in message and "must be less than certValidityHours" in message


# --- service sizing (merged over spec defaults) --------------------------------------------------------


def sizing_error(overrides: dict, defaults: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        config = parse_stack_config("prod", {**VALID, "environment": "prod", "services": {"order": overrides}})
        resolve_sizing("prod", config, "order", defaults or {"cpu": 512, "memory": 1024})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_fargate_cpu_memory_pair_aws_rejects() -> None:
    message = sizing_error({"cpu": 256, "memory": 4096})
    assert message == (
        "stack 'prod': config microservices:services.order.memory = 4096: is not a Fargate memory size for "
        "cpu 256; allowed: 512, 1024, 2048"
    )


def test_fargate_memory_override_checked_against_spec_default_cpu() -> None:
    message = sizing_error({"memory": 512})  # spec default cpu is 512, which needs 1024..4096
    assert "services.order.memory = 512" in message and "1024, 2048, 3072, 4096" in message


def test_fargate_cpu_not_a_fargate_size() -> None:
    message = sizing_error({"cpu": 300})
    assert "services.order.cpu = 300: must be a Fargate CPU size: 256, 512, 1024" in message


def test_large_fargate_sizes_describe_their_step() -> None:
    message = sizing_error({"cpu": 8192, "memory": 8192})
    assert "allowed: 16384 to 61440 in steps of 4096" in message


@pytest.mark.parametrize("key", ["desiredCount", "minCount", "maxCount"])
@pytest.mark.parametrize("value", [0, -1])
def test_zero_or_negative_counts(key: str, value: int) -> None:
    message = sizing_error({key: value})
    assert f"services.order.{key} = {value}: " in message
    assert "greater than or equal to 1" in message


def test_counts_must_be_ordered() -> None:
    message = sizing_error({"minCount": 3, "desiredCount": 2, "maxCount": 4})
    assert message == (
        "stack 'prod': config microservices:services.order.minCount = 3: must be at most desiredCount = 2 "
        "(microservices:services.order.desiredCount in stack 'prod')"
    )


def test_counts_name_only_the_values_involved_and_where_each_comes_from() -> None:
    message = sizing_error({"maxCount": 1, "minCount": 1, "desiredCount": 2})
    assert message == (
        "stack 'prod': config microservices:services.order.desiredCount = 2: must be at most maxCount = 1 "
        "(microservices:services.order.maxCount in stack 'prod')"
    )
    # minCount above the built-in desiredCount: the message names that default, not the spec's cpu/memory.
    message = sizing_error({"minCount": 3})
    assert message.startswith("stack 'prod': config microservices:services.order.minCount = 3: must be at most ")
    assert "desiredCount = 1 (the default; set microservices:services.order.desiredCount" in message
    assert "cpu" not in message and "memory" not in message and "512" not in message


def test_a_bad_spec_default_is_blamed_on_the_spec_file_not_the_stack() -> None:
    with pytest.raises(ConfigError) as caught:
        config = parse_stack_config("dev", VALID)
        resolve_sizing("dev", config, "shipping", {"cpu": 256, "memory": 4096}, spec_file="services/shipping.py")
    assert str(caught.value) == (
        "service spec services/shipping.py: sizing.memory = 4096: is not a Fargate memory size for cpu 256; "
        "allowed: 512, 1024, 2048"
    )


def test_a_stack_cpu_that_the_spec_memory_does_not_fit_names_both_sources() -> None:
    message = sizing_error({"cpu": 2048})  # spec memory 1024 is too small for 2048 cpu
    assert message.startswith("service spec services/order.py: sizing.memory = 1024: is not a Fargate memory ")
    assert "for cpu = 2048 (microservices:services.order.cpu in stack 'prod')" in message


def test_a_typo_in_spec_sizing_names_the_spec_file() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_sizing("dev", parse_stack_config("dev", VALID), "order", {"cpu": 256, "memroy": 512})
    assert str(caught.value).startswith("service spec services/order.py: sizing.memroy: unknown sizing key; allowed: ")


def test_secret_values_are_never_shown() -> None:
    message = error_for({**VALID, "network": {"azCount": "s3cr3t-value"}}, secret={"network"})
    assert message.startswith("stack 'dev': config microservices:network.azCount = [secret]: ")
    assert "s3cr3t" not in message


def test_valid_override_merges_over_spec_defaults() -> None:
    config = parse_stack_config("dev", {**VALID, "services": {"order": {"maxCount": 5}}})
    sizing = resolve_sizing("dev", config, "order", {"cpu": 512, "memory": 1024})
    assert (sizing.cpu, sizing.memory, sizing.max_count) == (512, 1024, 5)


# --- the service catalogue --------------------------------------------------------------------------


def spec(name: str, **kwargs: object) -> ServiceSpec:
    return ServiceSpec(name=name, description=name, **kwargs)  # type: ignore[arg-type]


def test_unknown_service_in_calls() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_catalog([spec("order", calls=("paymnt",)), spec("payment")])
    assert str(caught.value) == (
        "service spec 'order': calls = 'paymnt': unknown service; known services: order, payment"
    )


def test_subscription_to_event_never_published() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_catalog(
            [
                spec("order", publishes=("OrderPlaced",)),
                spec("inventory", subscribes=(Subscription(source="order", detail_types=("OrderShipped",)),)),
            ]
        )
    assert "subscribes.detailTypes = 'OrderShipped': 'order' does not publish it; it publishes: OrderPlaced" in str(
        caught.value
    )


def test_direct_delivery_only_for_lambda() -> None:
    with pytest.raises(ConfigError, match="only Lambda services can be invoked directly"):
        validate_catalog(
            [
                spec("order", publishes=("OrderPlaced",)),
                spec(
                    "inventory",
                    subscribes=(Subscription(source="order", detail_types=("OrderPlaced",), delivery="direct"),),
                ),
            ]
        )


def test_the_real_catalogue_is_valid() -> None:
    from services import load_catalog

    names = [s.name for s in load_catalog()]
    assert {"user", "order", "payment", "inventory"} <= set(names)


# --- end to end: the real program, the real CLI ------------------------------------------------------


def test_program_stops_before_declaring_any_resource() -> None:
    overrides = {"microservices:services": json.dumps({"order": {"cpu": 256, "memory": 4096}})}
    with pytest.raises(OfflineError) as caught:
        run_program(ROOT, "dev", config_overrides=overrides)
    assert str(caught.value).startswith("stack 'dev': config microservices:services.order.memory = 4096")
    assert caught.value.plan is not None
    declared = [r.type for r in caught.value.plan.resources]
    assert declared == ["pulumi:pulumi:Stack"], f"half-built stack: {declared}"


def test_unknown_service_in_stack_config() -> None:
    overrides = {"microservices:services": json.dumps({"ordr": {"maxCount": 3}})}
    with pytest.raises(OfflineError) as caught:
        run_program(ROOT, "dev", config_overrides=overrides)
    assert str(caught.value).startswith("stack 'dev': config microservices:services.ordr: unknown service; known")


def test_cli_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "Pulumi.broken.yaml").write_text(
        (ROOT / "Pulumi.dev.yaml").read_text().replace("azCount: 2", "azCount: 9")
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "offline",
            "preview",
            "--stack",
            "broken",
            "--project-dir",
            str(tmp_path),
            "--no-policy",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    # azCount is on line 8, column 5 of the stack file.
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'Pulumi.broken.yaml'}:8:5: stack 'broken': config microservices:network.azCount = 9: "
        "Input should be less than or equal to 6"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_spec_file_is_one_line_naming_file_field_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services

    package = tmp_path / "extra_services"
    package.mkdir()
    (package / "ledger.py").write_text(
        "from model.spec import ServiceSpec\n"
        "SPEC = ServiceSpec(name='ledger', description='ledger', run_as_user='0:0')\n"
    )
    monkeypatch.setattr(services, "__path__", [*services.__path__, str(package)])
    with pytest.raises(ConfigError) as caught:
        services.discover_specs()
    message = str(caught.value)
    assert message.startswith("service spec services/ledger.py: run_as_user = '0:0': String should match pattern"), (
        message
    )
    assert "\n" not in message
