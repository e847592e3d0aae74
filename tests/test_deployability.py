"""Values AWS would reject stop the program as one config line (or a ValueError naming the text), before
any resource exists: deprecated PostgreSQL versions, ARM64 on Fargate Spot, and security group
descriptions with characters EC2 does not accept."""

from __future__ import annotations

import pytest

from model.aws_limits import ec2_description, ec2_description_problem, rds_postgres_versions
from model.config import parse_stack_config
from model.errors import ConfigError

VALID = {"environment": "dev", "region": "us-east-1"}


def error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("dev", raw)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("version", ["16.6", "16.1", "17.4"])
def test_deprecated_postgres_versions_are_a_config_error(version: str) -> None:
    message = error_for({**VALID, "data": {"postgresVersion": version}})
    assert message.startswith(f"stack 'dev': config microservices:data.postgresVersion = \"{version}\": is deprecated")
    assert "16.11" in message and rds_postgres_versions()["retrieved"] in message, message


def test_unknown_postgres_version_is_a_config_error() -> None:
    message = error_for({**VALID, "data": {"postgresVersion": "16"}})
    assert "is not a creatable version" in message, message


def test_the_shipped_version_list_is_dated_and_sourced() -> None:
    data = rds_postgres_versions()
    assert data["retrieved"] and data["sources"] and data["refresh"].startswith("aws rds describe-db-engine-versions")
    assert not set(data["creatable"]) & set(data["deprecated"])
    assert parse_stack_config("dev", VALID).data.postgres_version in data["creatable"]


@pytest.mark.parametrize("capacity", ["spot", "mixed"])
def test_arm64_on_spot_is_one_config_line(capacity: str) -> None:
    message = error_for({**VALID, "compute": {"capacity": capacity, "cpuArchitecture": "ARM64"}})
    # A check across keys names the values it involves, not the whole section (issue 11).
    assert message.startswith("stack 'dev': config microservices:compute: cpuArchitecture ARM64 "), message
    assert f"cpuArchitecture ARM64 cannot run on Fargate Spot (capacity {capacity})" in message, message


def test_architecture_and_capacity_that_run() -> None:
    for capacity, cpu in (("spot", "X86_64"), ("mixed", "X86_64"), ("onDemand", "ARM64"), ("onDemand", "X86_64")):
        config = parse_stack_config("dev", {**VALID, "compute": {"capacity": capacity, "cpuArchitecture": cpu}})
        assert (config.compute.capacity, config.compute.cpu_architecture) == (capacity, cpu)
    default = parse_stack_config("dev", VALID).compute
    assert (default.capacity, default.cpu_architecture) == ("onDemand", "ARM64")


def test_security_group_descriptions_use_only_ec2_characters() -> None:
    assert ec2_description("mTLS mesh: order sidecar to inventory sidecar") == (
        "mTLS mesh: order sidecar to inventory sidecar"
    )
    assert ec2_description_problem("a-z A-Z 0-9 ._-:/()#,@[]+=&;{}!$*") is None
    with pytest.raises(ValueError, match='contains "\'"'):
        ec2_description("mTLS mesh: order's sidecar")
    assert "at most 255" in str(ec2_description_problem("x" * 256))
    assert ec2_description_problem("caf\u00e9") is not None
