"""The scaling benchmark's synthetic service catalogues (`benchmarks/synthetic.py`): valid, realistic,
deterministic, and buildable by the real platform composition. Timing is the benchmark's job, not this."""

from __future__ import annotations

import re
from collections import Counter

import pulumi
import pytest

from benchmarks.synthetic import CONTRACT_GROUPS, synthetic_catalog, with_notification
from components.platform import PlatformInputs, build_platform
from model.config import load_stack_config
from model.spec import NAME_PATTERN
from offline.runtime import read_stack_files, run_function
from services import validate_catalog
from tests.conftest import ROOT

SIZES = (1, 2, 5, 50, 200)


@pytest.mark.parametrize("n", SIZES)
def test_n_valid_specs_with_unique_names_paths_and_stores(n: int) -> None:
    catalog = synthetic_catalog(n)
    assert len(catalog) == n
    assert validate_catalog(catalog) == catalog  # valid, and already sorted by name
    names = [s.name for s in catalog]
    assert all(len(name) <= 22 for name in names)
    assert all(re.fullmatch(NAME_PATTERN, name) for name in names)
    paths = [p for s in catalog for p in s.public_paths]
    stores = [d.name for s in catalog for d in s.data_stores]
    assert len(set(names)) == n and len(set(paths)) == len(paths) and len(set(stores)) == len(stores)
    assert all(s.kind == "fargate" and s.image for s in catalog)
    assert all(len(s.data_stores) <= 1 and len(s.calls) <= 3 for s in catalog)


@pytest.mark.parametrize("n", SIZES)
def test_calls_go_to_earlier_services_and_subscriptions_to_real_publishers(n: int) -> None:
    catalog = synthetic_catalog(n)
    order = {s.name: i for i, s in enumerate(catalog)}
    published = {(s.name, t) for s in catalog for t in s.publishes}
    for spec in catalog:
        assert all(order[callee] < order[spec.name] for callee in spec.calls)  # acyclic
        for sub in spec.subscribes:
            assert sub.delivery == "queue" and sub.source != spec.name
            assert all((sub.source, t) in published for t in sub.detail_types)
    # Every event contract type has exactly one publisher (the schema registry requires it).
    publishers = Counter(t for s in catalog for t in s.publishes)
    assert all(publishers[t] == 1 for group in CONTRACT_GROUPS for t in group)


def test_same_seed_same_catalogue_other_seed_other_catalogue() -> None:
    assert synthetic_catalog(50, seed=7) == synthetic_catalog(50, seed=7)
    assert synthetic_catalog(50, seed=7) != synthetic_catalog(50, seed=8)


@pytest.mark.parametrize("n", [50, 200])
def test_a_realistic_mix(n: int) -> None:
    catalog = synthetic_catalog(n)
    public = sum(s.is_public for s in catalog)
    assert 0.25 * n <= public <= 0.4 * n
    kinds = Counter(d.kind for s in catalog for d in s.data_stores)
    assert set(kinds) == {"postgres", "dynamodb", "redis"}
    assert all(kinds[k] >= n // 5 for k in kinds)
    assert any(s.publishes for s in catalog) and any(not s.publishes for s in catalog)
    assert any(s.subscribes for s in catalog) and any(s.calls for s in catalog)


def test_small_catalogues_have_public_and_private_services() -> None:
    catalog = synthetic_catalog(5)
    assert any(s.is_public for s in catalog) and any(not s.is_public for s in catalog)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        synthetic_catalog(0)


def test_notification_subscribes_to_the_synthetic_publishers() -> None:
    catalog = with_notification(synthetic_catalog(5))
    assert validate_catalog(catalog)
    notification = catalog[-1]
    assert notification.name == "notification" and notification.kind == "lambda"
    publisher_of = {t: s.name for s in catalog for t in s.publishes}
    consumed = {t: (sub.source, sub.delivery) for sub in notification.subscribes for t in sub.detail_types}
    assert set(consumed) == {t for group in CONTRACT_GROUPS for t in group}
    assert all(source == publisher_of[t] for t, (source, _) in consumed.items())
    assert consumed["OrderPlaced"][1] == "queue" and consumed["UserRegistered"][1] == "direct"


def test_without_the_contract_publishers_the_notification_spec_is_left_out() -> None:
    catalog = [s for s in synthetic_catalog(5) if not s.publishes]
    assert with_notification(catalog) == catalog


def test_a_five_service_catalogue_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = validate_catalog(with_notification(synthetic_catalog(5)))
    files = read_stack_files(ROOT, "dev")
    config = {k: v for k, v in files.config.items() if k != "microservices:services"}

    def program() -> None:
        platform = build_platform(PlatformInputs.resolve("dev", load_stack_config(), catalog))
        for key, value in platform.exports().items():
            pulumi.export(key, value)

    monkeypatch.chdir(ROOT)
    plan = run_function(program, stack="dev", config=config, region=files.region).plan
    fargate = [s for s in catalog if s.kind == "fargate"]
    assert len(plan.of_type("microservices:service:FargateMicroservice")) == len(fargate) == 5
    assert len(plan.of_type("microservices:notification:NotificationFunction")) == 1
    assert sorted(plan.outputs["serviceNames"]) == sorted(s.name for s in fargate)
