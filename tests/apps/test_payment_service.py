"""The payment service over HTTP on loopback, against a real Redis server: idempotent authorize and void."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.apps.servers import LoopbackServer, Redis

AMOUNT = {"value": "42.50", "currency": "EUR"}


@pytest.fixture(scope="module")
def payment_api(redis_srv: Redis) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in redis_srv.env("PAYMENT_CACHE").items():
            env.setenv(key, value)
        env.setenv("PAYMENT_PROVIDER_API_KEY", "test-provider-key")
        env.setenv("PAYMENT_DECLINE_ABOVE", "1000")
        from apps.payment.app import build

        with LoopbackServer(build()) as server:
            yield server.url


def authorize(url: str, key: str, order: str = "order-1", amount: dict[str, str] = AMOUNT) -> httpx.Response:
    return httpx.post(
        f"{url}/payments/authorizations", json={"orderId": order, "amount": amount}, headers={"Idempotency-Key": key}
    )


def test_authorize_is_idempotent_per_key(payment_api: str, redis_srv: Redis) -> None:
    first = authorize(payment_api, "key-authorize-1")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "AUTHORIZED" and first.json()["amount"] == AMOUNT
    assert first.json()["paymentId"].startswith("pay_")
    again = authorize(payment_api, "key-authorize-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    # Exactly one authorization exists in the store, whatever the number of calls.
    client = redis.Redis(port=redis_srv.port, decode_responses=True)
    stored = [k for k in client.scan_iter("payment:auth:*") if first.json()["paymentId"] in k]
    assert len(stored) == 1


def test_same_key_different_request_is_a_conflict(payment_api: str) -> None:
    assert authorize(payment_api, "key-authorize-2").status_code == 201
    clash = authorize(payment_api, "key-authorize-2", amount={"value": "1", "currency": "EUR"})
    assert clash.status_code == 409 and "different request" in clash.json()["detail"]


def test_a_new_key_is_a_new_authorization(payment_api: str) -> None:
    a = authorize(payment_api, "key-authorize-3").json()
    b = authorize(payment_api, "key-authorize-4").json()
    assert a["paymentId"] != b["paymentId"]


def test_large_amounts_are_declined_with_402_and_the_decline_is_replayed(payment_api: str) -> None:
    declined = authorize(payment_api, "key-authorize-5", amount={"value": "5000", "currency": "EUR"})
    assert declined.status_code == 402
    assert declined.headers["content-type"] == "application/problem+json"
    assert declined.json()["status"] == 402 and "declined" in declined.json()["detail"]
    again = authorize(payment_api, "key-authorize-5", amount={"value": "5000", "currency": "EUR"})
    assert (again.status_code, again.json()) == (402, declined.json())


def test_void_is_idempotent(payment_api: str) -> None:
    payment = authorize(payment_api, "key-authorize-6").json()
    path = f"{payment_api}/payments/{payment['paymentId']}"
    first = httpx.post(f"{path}/void")
    assert first.status_code == 200 and first.json()["status"] == "VOIDED"
    again = httpx.post(f"{path}/void")
    assert again.status_code == 200 and again.json() == first.json()  # voidedAt unchanged: applied once
    assert httpx.get(path).json()["status"] == "VOIDED"


def test_provider_key_signs_the_reference(payment_api: str) -> None:
    import hashlib
    import hmac

    a = authorize(payment_api, "key-authorize-7", order="order-7").json()
    expected = hmac.new(
        b"test-provider-key", f"{a['paymentId']}:order-7:{AMOUNT['value']}".encode(), hashlib.sha256
    ).hexdigest()[:24]
    assert a["providerReference"] == expected


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"orderId": "o-1", "amount": AMOUNT}, 400),
        ({"Idempotency-Key": "short"}, {"orderId": "o-1", "amount": AMOUNT}, 400),
        (
            {"Idempotency-Key": "key-bad-body"},
            {"orderId": "o-1", "amount": {"value": "1.2345", "currency": "EUR"}},
            422,
        ),
        ({"Idempotency-Key": "key-bad-body"}, {"amount": AMOUNT}, 422),
    ],
)
def test_bad_requests(payment_api: str, headers: dict[str, str], body: dict[str, object], status: int) -> None:
    assert httpx.post(f"{payment_api}/payments/authorizations", json=body, headers=headers).status_code == status


def test_unknown_authorization_and_readiness(payment_api: str) -> None:
    assert httpx.get(f"{payment_api}/payments/nope").status_code == 404
    assert httpx.post(f"{payment_api}/payments/nope/void").status_code == 404
    assert httpx.get(f"{payment_api}/ready").json()["checks"] == ["payment-cache"]


def test_missing_provider_key_stops_start_up(redis_srv: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from apps.payment.app import PaymentService
    from apps.runtime import MissingSetting

    monkeypatch.delenv("PAYMENT_PROVIDER_API_KEY", raising=False)
    with pytest.raises(MissingSetting, match="PAYMENT_PROVIDER_API_KEY"):
        asyncio.run(PaymentService().start())
