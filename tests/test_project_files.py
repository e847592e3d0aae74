"""Pulumi.yaml and the stack files, checked the way the real CLI would check them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from model.config import parse_stack_config
from tests.conftest import ROOT, STACKS

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "pulumi-project.json").read_text())


def test_project_file_validates_against_pulumis_schema() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(project), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_schema_check_would_catch_an_object_typed_declaration() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["config"]["microservices:network"] = {"type": "object"}
    assert list(Draft202012Validator(SCHEMA).iter_errors(project)), "object-typed config must be rejected"


def test_project_runs_in_the_projects_virtualenv() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_parses_into_typed_config(stack: str) -> None:
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in doc.items() if k.startswith("microservices:")}
    raw["region"] = doc["aws:region"]
    config = parse_stack_config(stack, raw)
    assert config.environment == stack


def test_dev_is_cheap_and_prod_is_resilient() -> None:
    def load(stack: str):
        doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        raw = {k.split(":", 1)[1]: v for k, v in doc.items() if k.startswith("microservices:")}
        return parse_stack_config(stack, {**raw, "region": doc["aws:region"]})

    dev, prod = load("dev"), load("prod")
    assert (dev.network.nat_gateways, dev.compute.capacity, dev.data.multi_az) == ("single", "spot", False)
    assert (prod.network.az_count, prod.network.nat_gateways) == (3, "onePerAz")
    assert (prod.compute.capacity, prod.compute.cpu_architecture) == ("onDemand", "ARM64")
    assert (dev.compute.capacity, dev.compute.cpu_architecture) == ("spot", "X86_64")
    assert prod.data.multi_az and prod.data.deletion_protection and prod.data.protect_resources
    assert not prod.compute.enable_execute_command
