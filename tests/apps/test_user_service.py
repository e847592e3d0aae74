"""The user service over HTTP on loopback, against a real PostgreSQL server, publishing to moto's EventBridge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from contracts import validate_event
from tests.apps.servers import LoopbackServer, Postgres
from tests.apps.support import captured_events, event_bus


@pytest.fixture(scope="module")
def user_api(postgres: Postgres) -> Iterator[tuple[str, Any]]:
    postgres.create_database("users")
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        for key, value in {**postgres.env("USERS_DB", "users"), **event_bus("user")}.items():
            env.setenv(key, value)
        from apps.user.app import build

        with LoopbackServer(build()) as server:
            yield server.url, boto3.client("sqs", region_name="us-east-1")


def test_create_then_get(user_api: tuple[str, Any]) -> None:
    url, sqs = user_api
    created = httpx.post(
        f"{url}/users",
        json={"email": "Ada@Example.org", "displayName": "Ada", "locale": "en-GB"},
        headers={"x-correlation-id": "signup-1"},
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == f"/users/{user['userId']}"
    assert user["email"] == "ada@example.org" and user["marketingOptIn"] is False
    fetched = httpx.get(f"{url}/users/{user['userId']}")
    assert fetched.status_code == 200 and fetched.json() == user
    events = captured_events(sqs, "UserRegistered")
    detail = next(e["detail"] for e in events if e["detail"]["userId"] == user["userId"])
    validate_event("UserRegistered", 1, detail)  # the notification contract, v1
    assert detail["correlationId"] == "signup-1"
    assert events[0]["source"] == "microservices.user"


def test_duplicate_email_is_a_conflict(user_api: tuple[str, Any]) -> None:
    url, _ = user_api
    assert httpx.post(f"{url}/users", json={"email": "grace@example.org"}).status_code == 201
    again = httpx.post(f"{url}/users", json={"email": "GRACE@example.org"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": "no-at-sign"}, "email"),
        ({"email": "a@b.co", "locale": "english"}, "locale"),
        ({"email": "a@b.co", "marketingOptIn": "yes"}, "marketingOptIn"),
        ([], "JSON object"),
    ],
)
def test_invalid_bodies_are_422(user_api: tuple[str, Any], body: Any, field: str) -> None:
    url, _ = user_api
    answer = httpx.post(f"{url}/users", json=body)
    assert answer.status_code == 422 and field in answer.json()["detail"]


def test_unknown_user_is_404_and_ready_checks_the_database(user_api: tuple[str, Any]) -> None:
    url, _ = user_api
    assert httpx.get(f"{url}/users/nope").status_code == 404
    ready = httpx.get(f"{url}/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == ["users-db"]
