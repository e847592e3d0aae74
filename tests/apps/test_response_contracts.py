"""The response check the service tests run (contract_responses.py): it accepts what the contracts declare
and reports drift: an undeclared status, media type, a body that breaks its schema (`$ref`s resolved)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps.runtime import create_app
from tests.apps import contract_responses
from tests.apps.contract_responses import checker
from tests.apps.servers import LoopbackServer

JSON, PROBLEM = "application/json", "application/problem+json"
USER = {"userId": "u_1", "email": "ada@example.org", "createdAt": "2026-11-29T06:00:00Z"}
PAYMENT = {
    "paymentId": "pay_1",
    "orderId": "order-1",
    "status": "AUTHORIZED",
    "amount": {"value": "42.50", "currency": "EUR"},
}


def problems(service: str, method: str, path: str, status: int, body: Any, media: str = JSON) -> list[str]:
    return checker(service).problems(method, path, status, media, json.dumps(body).encode())


def test_a_body_the_contract_declares_passes() -> None:
    assert problems("user", "GET", "/users/u_1", 200, USER) == []
    assert problems("user", "POST", "/users", 201, {**USER, "displayName": None, "marketingOptIn": True}) == []
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such user"}
    assert problems("user", "GET", "/users/nope", 404, problem, PROBLEM) == []


def test_a_drifted_body_fails() -> None:
    missing = {k: v for k, v in USER.items() if k != "createdAt"}
    assert problems("user", "GET", "/users/u_1", 200, missing) == [
        "user: GET /users/u_1 -> 200 (getUser): body: 'createdAt' is a required property"
    ]
    (retyped,) = problems("user", "GET", "/users/u_1", 200, {**USER, "marketingOptIn": "yes"})
    assert "body['marketingOptIn']: 'yes' is not of type 'boolean'" in retyped
    (bad_time,) = problems("user", "GET", "/users/u_1", 200, {**USER, "createdAt": "yesterday"})
    assert "body['createdAt']: 'yesterday' is not a 'date-time'" in bad_time


def test_refs_are_resolved_through_the_components() -> None:
    assert problems("payment", "GET", "/payments/pay_1", 200, PAYMENT) == []
    found = problems("payment", "GET", "/payments/pay_1", 200, {**PAYMENT, "amount": {"value": "1.2345"}})
    assert [p.split(": ", 2)[-1] for p in found] == [
        "body['amount']: 'currency' is a required property",  # Payment -> Money (a $ref in a $ref)
        "body['amount']['value']: '1.2345' does not match " + repr(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$"),
    ]


def test_an_undeclared_status_media_type_or_operation_fails() -> None:
    assert problems("user", "GET", "/users/u_1", 500, {}) == [
        "user: GET /users/u_1 -> 500 (getUser): status 500 is not declared (declared: 200, 404)"
    ]
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such user"}
    assert "media type 'application/json' is not declared" in problems("user", "GET", "/users/x", 404, problem)[0]
    assert problems("user", "DELETE", "/users/u_1", 405, {}) == [
        "user: DELETE /users/u_1 -> 405: the contract v1.0.0 has no operation for DELETE /users/u_1"
    ]


def test_a_literal_path_is_matched_before_a_templated_one() -> None:
    lookup = checker("inventory").operation
    assert lookup("POST", "/inventory/reservations") is not None
    assert lookup("POST", "/inventory/reservations").operation_id == "reserveStock"  # type: ignore[union-attr]
    assert lookup("GET", "/inventory/SKU-1").operation_id == "getStock"  # type: ignore[union-attr]


def test_a_served_app_that_drifts_from_its_contract_is_reported() -> None:
    """End to end: LoopbackServer checks a reference service's responses; an app named like one
    but answering a drifted body is on record when the client has the answer."""

    async def get_user(request: Request) -> Response:
        return JSONResponse({"userId": request.path_params["user_id"], "email": "ada@example.org"})

    app = create_app("user", [Route("/users/{user_id:str}", get_user)])
    with LoopbackServer(app) as server:
        assert httpx.get(f"{server.url}/users/u_1").status_code == 200
        assert httpx.get(f"{server.url}/health").status_code == 200
    assert contract_responses.drain() == [
        "user: GET /users/u_1 -> 200 (getUser): body: 'createdAt' is a required property"
    ]


@pytest.mark.parametrize("service", ["user", "order", "payment", "inventory"])
def test_every_reference_service_is_checked(service: str) -> None:
    app = create_app(service, [])
    assert isinstance(contract_responses.wrap(app), contract_responses.ContractResponses)
    assert contract_responses.wrap(create_app("not-a-service", [])) is not None
