"""Every response a reference app returns in the service tests is checked against its OpenAPI contract.

`LoopbackServer` wraps an app whose `app.state.service` has a contract (`interfaces/openapi/<service>.yaml`)
in `ContractResponses`: for each HTTP response it finds the operation (method + path template; a literal
path beats a templated one, as OpenAPI says), and checks that
* the status code is declared for that operation (exactly, as `NXX`, or as `default`);
* the media type of the body is one the response declares (no body when it declares none);
* a JSON body validates against that response's schema (JSON Schema 2020-12, the dialect of OpenAPI 3.1;
  `$ref`s resolved in the contract document by a `referencing` registry; formats checked).
Problems are recorded before the last body chunk is sent, so by the time the test's client has the
response, a mismatch is on record; `tests/apps/conftest.py` fails the test that caused it.
This covers the calls the apps make to each other through `<NAME>_SERVICE_URL` too.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from interfaces import ROOT
from interfaces.http import Contract, Operation, load_document

CONTRACTS = ROOT / "interfaces" / "openapi"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

_lock = threading.Lock()
_problems: list[str] = []


def drain() -> list[str]:
    """The problems recorded so far (and forget them)."""
    with _lock:
        found = list(_problems)
        _problems.clear()
    return found


def _record(problems: list[str]) -> None:
    with _lock:
        _problems.extend(problems)


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    if "date-time" not in checker.checkers:  # jsonschema checks it only with rfc3339-validator installed

        @checker.checks("date-time", raises=ValueError)
        def _date_time(value: object) -> bool:
            if not isinstance(value, str):
                return True
            if not _RFC3339.match(value):
                return False
            datetime.fromisoformat(value.replace("z", "Z"))
            return True

    return checker


FORMATS = _format_checker()


def has_contract(service: str) -> bool:
    return (CONTRACTS / f"{service}.yaml").is_file()


@cache
def contract(service: str, path: Path | None = None) -> Contract:
    document = load_document(path or CONTRACTS / f"{service}.yaml")
    return Contract(service, str(document["info"]["version"]), document)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _routes(doc: Contract) -> list[tuple[re.Pattern[str], Operation]]:
    routes = []
    for op in doc.operations.values():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(op.path))
        routes.append((re.compile(f"^{pattern}$"), op))
    # A literal path matches before a templated one (/inventory/reservations before /inventory/{sku}).
    return sorted(routes, key=lambda r: (r[1].path.count("{"), r[1].path))


class ResponseChecker:
    """Checks responses against one contract document."""

    def __init__(self, doc: Contract) -> None:
        self.doc = doc
        self.uri = f"urn:openapi:{doc.service}"
        self.registry: Registry[Any] = Registry().with_resource(
            self.uri, DRAFT202012.create_resource(dict(doc.document))
        )
        self.routes = _routes(doc)
        self._validators: dict[str, Draft202012Validator] = {}

    def operation(self, method: str, path: str) -> Operation | None:
        for pattern, op in self.routes:
            if op.method == method.lower() and pattern.match(path):
                return op
        return None

    def _validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{self.uri}#{pointer}"}, registry=self.registry, format_checker=FORMATS
            )
        return self._validators[pointer]

    def _response(self, op: Operation, status: int) -> tuple[str, Mapping[str, Any]] | None:
        """The declared response for `status` and its JSON pointer (a `$ref` to components followed)."""
        responses = op.spec.get("responses") or {}
        for code in (str(status), f"{str(status)[0]}XX", "default"):
            if code in responses:
                pointer = f"/paths/{_escape(op.path)}/{op.method}/responses/{code}"
                node = responses[code]
                while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
                    pointer = node["$ref"].removeprefix("#")
                    node = self.doc.resolve({"$ref": node["$ref"]})
                return pointer, node
        return None

    def problems(self, method: str, path: str, status: int, content_type: str | None, body: bytes) -> list[str]:
        where = f"{self.doc.service}: {method} {path} -> {status}"
        op = self.operation(method, path)
        if op is None:
            return [f"{where}: the contract v{self.doc.version} has no operation for {method} {path}"]
        where = f"{where} ({op.operation_id})"
        found = self._response(op, status)
        if found is None:
            declared = ", ".join(sorted(str(c) for c in op.spec.get("responses") or {}))
            return [f"{where}: status {status} is not declared (declared: {declared})"]
        pointer, response = found
        content = response.get("content") or {}
        media = (content_type or "").split(";")[0].strip().lower()
        if not content:
            return [f"{where}: the contract declares no body, the app sent {media or 'one'}"] if body else []
        if media not in content:
            return [f"{where}: media type {media or '(none)'!r} is not declared (declared: {', '.join(content)})"]
        if not (media == "application/json" or media.endswith("+json")):
            return []
        try:
            document = json.loads(body)
        except ValueError as error:
            return [f"{where}: the {media} body is not JSON: {error}"]
        validator = self._validator(f"{pointer}/content/{_escape(media)}/schema")
        return [
            f"{where}: body{''.join(f'[{p!r}]' for p in error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
        ]


@cache
def checker(service: str) -> ResponseChecker:
    return ResponseChecker(contract(service))


class ContractResponses:
    """ASGI wrapper recording every response of `app` that its contract does not declare (see above)."""

    def __init__(self, app: Any, service: str) -> None:
        self.app = app
        self.service = service
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        status = 0
        content_type: str | None = None
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    _record(
                        checker(self.service).problems(
                            scope["method"], scope["path"], status, content_type, b"".join(chunks)
                        )
                    )
            await send(message)

        await self.app(scope, receive, capture)


def wrap(app: Any) -> Any:
    """`app` checked against its contract when it is a reference service's app, else `app` itself."""
    service = getattr(getattr(app, "state", None), "service", None)
    if isinstance(service, str) and has_contract(service):
        return ContractResponses(app, service)
    return app
