"""Synthetic service catalogues for the scaling benchmark: n valid, realistic `ServiceSpec`s.

The mix follows the real catalogue (`services/`): about a third of the services are public (one
unique path prefix each), each owns zero or one data store (PostgreSQL, DynamoDB or Redis, evenly
spread, unique names), calls zero to three EARLIER services (so the call graph is acyclic), about
half publish events, and about a third consume, through their own queue, events another service
really publishes. Everything is drawn from `random.Random(seed)`: the same (n, seed) always gives the
same catalogue.

Two things tie a catalogue to the real program:
* The event contracts under `contracts/schemas/` are registered by the EventBus, which
  requires exactly ONE publisher per contract detail-type (`components.schema_registry.discover_contracts`).
  So the real contract types are handed to the first synthetic publishers, grouped as the real
  services publish them (`OrderPlaced` and `OrderCancelled` together, ...); the other events are
  synthetic (`Svc0042Created`).
* `with_notification(catalog)` adds the real notification Lambda spec with its subscriptions
  re-pointed at whichever synthetic service publishes each contract type, so the fixed part of the
  platform (the Lambda, its queue and direct rules) is the same as in the real program.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from contracts import KNOWN_CONTRACTS, PUBLISHERS
from model.spec import (
    DataStoreSpec,
    DynamoStore,
    PostgresStore,
    RedisStore,
    SecretRef,
    ServiceSpec,
    Subscription,
)

IMAGE = "public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine"
"""The image the real specs use (any image works offline; the Fargate sizing checks need one)."""
IMAGE_USER = "101:101"
"""The non-root user of that image, as the real specs declare it."""

STORE_KINDS = ("postgres", "dynamodb", "redis", None)
"""Evenly spread: a quarter of the services own no store, a quarter each kind."""

SIZES = ({"cpu": 256, "memory": 512}, {"cpu": 512, "memory": 1024}, {"cpu": 1024, "memory": 2048})


def _contract_groups() -> tuple[tuple[str, ...], ...]:
    """The contract detail-types with a schema, grouped by their real publisher, in a stable order."""
    types = sorted({t for t, _ in KNOWN_CONTRACTS})
    by_source: dict[str, list[str]] = {}
    for detail_type in types:
        by_source.setdefault(PUBLISHERS.get(detail_type, detail_type), []).append(detail_type)
    return tuple(tuple(group) for _, group in sorted(by_source.items()))


CONTRACT_GROUPS = _contract_groups()
"""E.g. (("InventoryLow",), ("OrderCancelled", "OrderPlaced"), ("PaymentCaptured",), ("UserRegistered",))."""


def service_name(index: int) -> str:
    return f"svc-{index:04d}"


def _event_prefix(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))  # svc-0042 -> Svc0042


def _store(name: str, kind: str | None, rng: random.Random) -> tuple[DataStoreSpec, ...]:
    if kind == "postgres":
        return (PostgresStore(name=f"{name}-db", database_name=name.replace("-", "_")),)
    if kind == "dynamodb":
        return (
            DynamoStore(
                name=f"{name}-table",
                hash_key="id",
                range_key="createdAt" if rng.random() < 0.5 else None,
                ttl_attribute="expiresAt" if rng.random() < 0.3 else None,
            ),
        )
    if kind == "redis":
        return (RedisStore(name=f"{name}-cache"),)
    return ()


def synthetic_catalog(n: int, seed: int = 0) -> list[ServiceSpec]:
    """`n` Fargate service specs `svc-0000` ... that pass `services.validate_catalog`, sorted by name."""
    if n < 1:
        raise ValueError(f"synthetic_catalog: n must be at least 1, got {n}")
    if n > 10_000:
        raise ValueError(f"synthetic_catalog: n must be at most 10000 (4-digit names), got {n}")
    rng = random.Random(seed)
    names = [service_name(i) for i in range(n)]

    public = set(rng.sample(range(n), k=max(1, round(n / 3))))
    stores: list[str | None] = [STORE_KINDS[i % len(STORE_KINDS)] for i in range(n)]
    rng.shuffle(stores)

    # Publishers: about half; at least one, since the contract types need a publisher.
    publishers = [i for i in range(n) if rng.random() < 0.5] or [rng.randrange(n)]
    publishes: dict[int, list[str]] = {}
    for i in publishers:
        prefix = _event_prefix(names[i])
        publishes[i] = [f"{prefix}{verb}" for verb in ("Created", "Updated", "Deleted")[: rng.randint(1, 2)]]
    for g, group in enumerate(CONTRACT_GROUPS):  # each contract type: exactly one publisher
        publishes[publishers[g % len(publishers)]].extend(group)

    specs = []
    for i, name in enumerate(names):
        calls = tuple(names[j] for j in sorted(rng.sample(range(i), k=rng.randint(0, min(3, i)))))
        sources = [p for p in publishers if p != i]
        subscribes: tuple[Subscription, ...] = ()
        if sources and rng.random() < 1 / 3:
            chosen = sorted(rng.sample(sources, k=min(len(sources), rng.randint(1, 2))))
            subscribes = tuple(
                Subscription(
                    source=names[p],
                    detail_types=tuple(rng.sample(publishes[p], k=rng.randint(1, len(publishes[p])))),
                    delivery="queue",
                )
                for p in chosen
            )
        secrets = (
            (SecretRef(env_name="UPSTREAM_API_KEY", description=f"API key {name} presents upstream"),)
            if rng.random() < 0.2
            else ()
        )
        specs.append(
            ServiceSpec(
                name=name,
                description=f"Synthetic service {i} of {n} (scaling benchmark)",
                image=IMAGE,
                run_as_user=IMAGE_USER,
                container_port=8080,
                health_check_path="/health",
                sizing=dict(rng.choice(SIZES)),
                public_paths=(f"/{name}",) if i in public else (),
                calls=calls,
                data_stores=_store(name, stores[i], rng),
                publishes=tuple(publishes.get(i, ())),
                subscribes=subscribes,
                secrets=secrets,
            )
        )
    # The other side of the call graph: every callee accepts exactly the services that call it.
    callers = {spec.name: tuple(c.name for c in specs if spec.name in c.calls) for spec in specs}
    return [spec.model_copy(update={"accepts": callers[spec.name]}) for spec in specs]


def with_notification(catalog: Sequence[ServiceSpec]) -> list[ServiceSpec]:
    """`catalog` plus the real notification Lambda spec, its subscriptions re-pointed at the services
    of `catalog` that publish each detail-type (same delivery as the real spec). Unchanged if some
    detail-type it consumes has no publisher in `catalog`."""
    from services.notification.service import SPEC

    publisher_of = {t: s.name for s in catalog for t in s.publishes}
    subscribes: list[Subscription] = []
    for sub in SPEC.subscribes:
        if any(t not in publisher_of for t in sub.detail_types):
            return list(catalog)
        for source in sorted({publisher_of[t] for t in sub.detail_types}):
            types = tuple(t for t in sub.detail_types if publisher_of[t] == source)
            subscribes.append(Subscription(source=source, detail_types=types, delivery=sub.delivery))
    return [*catalog, SPEC.model_copy(update={"subscribes": tuple(subscribes)})]
