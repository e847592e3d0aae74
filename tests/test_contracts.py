"""Contracts between services: each Fargate service's OpenAPI 3.1 document (validated with
openapi-spec-validator), the operations callers declare (`uses`), compatibility of new contract and
event-schema versions, and a consumer test against a stub served from the provider's contract by
Prism (@stoplight/prism-cli, pinned in package.json)."""

from __future__ import annotations

import copy
import importlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from contracts import SCHEMA_DIR
from interfaces.events import check_schema_dir, incompatibilities
from interfaces.http import (
    Contract,
    ContractError,
    check_callers,
    check_compatible,
    contract_of,
    load_document,
    released_versions,
    used_operations,
)
from model.spec import ServiceSpec
from services import load_catalog
from tests.conftest import ROOT

CATALOG = load_catalog()
FARGATE = [s for s in CATALOG if s.kind == "fargate"]
CONTRACTS = {s.name: contract_of(s) for s in FARGATE}
PRISM = ROOT / "node_modules" / ".bin" / "prism"


def _copy(contract: Contract, version: str = "1.1.0") -> Contract:
    document = copy.deepcopy(dict(contract.document))
    document["info"]["version"] = version
    return Contract(contract.service, version, document)


# --- the documents ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", FARGATE, ids=lambda s: s.name)
def test_every_fargate_service_has_a_valid_openapi_31_contract(spec: ServiceSpec) -> None:
    assert spec.api_contract is not None, f"{spec.name}: no api_contract"
    document = load_document(ROOT / spec.api_contract)
    assert document["openapi"] == "3.1.0"
    assert CONTRACTS[spec.name].operations, spec.name
    # What the platform routes and probes is in the contract: the health check path and public prefixes.
    paths = document["paths"]
    assert "get" in paths[spec.health_check_path], f"{spec.name}: no GET {spec.health_check_path}"
    for prefix in spec.public_paths:
        assert any(p == prefix or p.startswith(prefix + "/") for p in paths), f"{spec.name}: nothing under {prefix}"


def test_an_invalid_document_is_rejected_with_its_path(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "interfaces/openapi/payment.yaml").read_text())
    del document["paths"]["/payments/{paymentId}"]["get"]["parameters"][0]["in"]
    path = tmp_path / "payment.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ContractError, match=r"payment\.yaml: invalid OpenAPI 3\.1 document: "):
        load_document(path)


# --- callers --------------------------------------------------------------------------------------


def test_every_operation_a_caller_uses_exists_in_the_callee_s_contract() -> None:
    assert used_operations(CATALOG)["payment"] == {"authorizePayment": ["order"], "voidPayment": ["order"]}
    assert check_callers(CATALOG, CONTRACTS) == []


def test_a_caller_using_an_operation_the_callee_lacks_fails() -> None:
    order = next(s for s in CATALOG if s.name == "order")
    greedy = order.model_copy(update={"uses": (*order.uses, "payment.refundEverything")})
    catalog = [greedy if s.name == "order" else s for s in CATALOG]
    (problem,) = check_callers(catalog, CONTRACTS)
    assert problem.startswith(
        "service order uses payment.refundEverything, but payment's contract v1.0.0 has no operation 'refundEverything'"
    )


# --- HTTP contract compatibility ----------------------------------------------------------------


def test_the_current_contracts_are_compatible_with_their_released_versions() -> None:
    used = used_operations(CATALOG)
    for spec in FARGATE:
        contract = CONTRACTS[spec.name]
        released = released_versions(spec.name)
        assert released, f"{spec.name}: no released version under interfaces/openapi/released/{spec.name}/"
        version, path = released[-1]
        old = Contract(spec.name, version, load_document(path))
        assert check_compatible(old, contract, used.get(spec.name, {})) == [], spec.name
        if version == contract.version:
            assert old.document == contract.document, f"{spec.name}: changed without a new info.version"


def test_removing_an_operation_in_use_fails_and_an_unused_one_may_go() -> None:
    old = CONTRACTS["payment"]
    new = _copy(old)
    del new.document["paths"]["/payments/{paymentId}"]
    del new.document["paths"]["/payments/{paymentId}/void"]
    assert check_compatible(old, new, ["voidPayment"]) == [
        "payment.voidPayment (v1.0.0 -> v1.1.0): the operation was removed"
    ]
    assert check_compatible(old, new, ["authorizePayment"]) == []


def test_narrowing_an_operation_in_use_fails() -> None:
    old = CONTRACTS["inventory"]
    new = _copy(old, "2.0.0")
    get = new.document["paths"]["/inventory/{sku}"]["get"]
    get["parameters"].append({"name": "warehouse", "in": "query", "required": True, "schema": {"type": "string"}})
    get["parameters"][0]["schema"]["pattern"] = "^[A-Z]{3}$"
    del new.document["components"]["schemas"]["Stock"]["properties"]["reserved"]
    assert check_compatible(old, new, ["getStock"]) == [
        "inventory.getStock (v1.0.0 -> v2.0.0): path parameter 'sku': pattern changed to '^[A-Z]{3}$'",
        "inventory.getStock (v1.0.0 -> v2.0.0): new required query parameter 'warehouse'",
        "inventory.getStock (v1.0.0 -> v2.0.0): response 200: property 'reserved' was removed",
    ]


def test_narrowing_a_request_body_fails_and_widening_it_passes() -> None:
    old = CONTRACTS["payment"]
    narrower = _copy(old, "2.0.0")
    schemas = narrower.document["components"]["schemas"]
    schemas["AuthorizationRequest"]["properties"]["orderId"] = {
        "type": "string",
        "pattern": "^[A-Za-z0-9_-]{1,64}$",
        "maxLength": 16,
    }
    schemas["AuthorizationRequest"]["required"].append("customerId")
    schemas["AuthorizationRequest"]["properties"]["customerId"] = {"type": "string"}
    assert check_compatible(old, narrower, ["authorizePayment"]) == [
        "payment.authorizePayment (v1.0.0 -> v2.0.0): request body (application/json): property 'customerId' became "
        "required",
        "payment.authorizePayment (v1.0.0 -> v2.0.0): request body (application/json): orderId: maxLength tightened "
        "to 16",
    ]
    wider = _copy(old)
    wider.document["components"]["schemas"]["AuthorizationRequest"]["properties"]["providerHint"] = {"type": "string"}
    assert check_compatible(old, wider, ["authorizePayment"]) == []


# --- event schema compatibility -----------------------------------------------------------------


def _schema(detail_type: str, version: int) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / detail_type / f"v{version}.json").read_text())


def test_every_published_event_version_is_backward_compatible_with_the_previous_one() -> None:
    assert check_schema_dir(SCHEMA_DIR) == []
    assert incompatibilities(_schema("OrderPlaced", 1), _schema("OrderPlaced", 2)) == []


def test_incompatible_event_versions_fail() -> None:
    v2 = _schema("OrderPlaced", 2)
    removed = copy.deepcopy(v2)
    removed["required"].remove("userId")
    del removed["properties"]["userId"]
    assert incompatibilities(v2, removed) == ["required field userId was removed"]

    renamed = copy.deepcopy(v2)
    renamed["properties"]["customerId"] = renamed["properties"].pop("userId")
    renamed["required"] = [("customerId" if r == "userId" else r) for r in renamed["required"]]
    assert incompatibilities(v2, renamed) == ["required field userId was removed (renamed to 'customerId'?)"]

    narrowed = copy.deepcopy(v2)
    narrowed["properties"]["items"]["items"]["properties"]["quantity"]["maximum"] = 10
    narrowed["$defs"]["money"]["properties"]["currency"] = {"type": "string", "enum": ["EUR"]}
    assert incompatibilities(v2, narrowed) == [
        "items[].quantity: maximum tightened to 10",
        "items[].unitPrice.currency: enum narrowed to ['EUR']",
        "total.currency: enum narrowed to ['EUR']",
    ]

    retyped = copy.deepcopy(v2)
    retyped["properties"]["estimatedDeliveryAt"] = {"type": "integer"}
    assert incompatibilities(v2, retyped) == ["estimatedDeliveryAt: type narrowed from ['string'] to ['integer']"]

    optional = copy.deepcopy(v2)
    optional["properties"]["giftWrap"] = {"type": "boolean"}
    assert incompatibilities(v2, optional) == []


# --- service virtualization: a stub served from the provider's contract --------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def payment_stub() -> Iterator[str]:
    """Prism serving the payment contract on loopback: what the order service's tests call instead of payment."""
    assert PRISM.exists(), "run `make setup` (npm ci installs @stoplight/prism-cli)"
    port = _free_port()
    process = subprocess.Popen(
        [str(PRISM), "mock", "--host", "127.0.0.1", "--port", str(port), str(ROOT / "interfaces/openapi/payment.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(
                        f"prism did not start: {process.stdout.read() if process.stdout else ''}"
                    ) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _call(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _resolved_schema(contract: Contract, name: str) -> dict[str, Any]:
    components = contract.document["components"]["schemas"]
    return {**components[name], "$defs": components}


def test_the_consumer_s_call_is_answered_by_the_provider_s_contract(payment_stub: str) -> None:
    status, payment = _call(f"{payment_stub}/payments/pay_9d2e41")
    assert status == 200
    schema = json.loads(
        json.dumps(_resolved_schema(CONTRACTS["payment"], "Payment")).replace("#/components/schemas/", "#/$defs/")
    )
    jsonschema.validate(payment, schema)
    assert payment["status"] in {"AUTHORIZED", "VOIDED", "DECLINED"}


def test_the_stub_rejects_a_request_the_contract_forbids(payment_stub: str) -> None:
    # authorizePayment requires the Idempotency-Key header: a consumer that forgets it finds out here.
    status, problem = _call(
        f"{payment_stub}/payments/authorizations",
        "POST",
        {"orderId": "ord-1", "amount": {"value": "1.00", "currency": "EUR"}},
    )
    assert status == 422, problem
    status, _ = _call(
        f"{payment_stub}/payments/authorizations",
        "POST",
        {"orderId": "ord-1", "amount": {"value": "1.00", "currency": "EUR"}},
        {"Idempotency-Key": "ord-1-authorize"},
    )
    assert status == 201


# --- the contracts describe the reference apps ---------------------------------------------------


def _route_key(method: str, path: str) -> tuple[str, str]:
    return method.upper(), re.sub(r"\{[^}]+\}", "{}", path)


@pytest.mark.parametrize("spec", FARGATE, ids=lambda s: s.name)
def test_the_reference_app_serves_exactly_the_operations_of_its_contract(spec: ServiceSpec) -> None:
    """apps/<service>/app.py's routes (method + path) and the contract's operations are the same set."""
    module = importlib.import_module(f"apps.{spec.name}.app")
    routes = {
        _route_key(method, route.path)
        for route in module.build().routes
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
    operations = {_route_key(op.method, op.path) for op in CONTRACTS[spec.name].operations.values()}
    assert routes == operations, (
        f"{spec.name}: app only {sorted(routes - operations)}, contract only {sorted(operations - routes)}"
    )
