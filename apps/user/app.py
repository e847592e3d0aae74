"""User service: create and read user accounts, in its own PostgreSQL database (`users-db`).

    POST /users           {"email", "displayName"?, "locale"?, "marketingOptIn"?} -> 201 user
                          (409 if the email is taken; 422 if the body is invalid)
    GET  /users/{userId}  -> 200 user, 404 if unknown

A new account publishes `UserRegistered` (v1 contract) on the bus after the row is committed; a
failed publish is logged and does not undo the account (the event is best effort here).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apps.runtime import ReadinessCheck, create_app
from apps.runtime.app import read_json_object
from apps.runtime.events import EventPublisher, event_detail
from apps.runtime.stores import aws_client, postgres_pool

log = logging.getLogger("apps.user")

STORE = "users-db"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id         text PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    display_name    text,
    locale          text NOT NULL DEFAULT 'en',
    marketing_opt_in boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
)
"""


class UserService:
    def __init__(self) -> None:
        self.pool: Any = None
        self.events: EventPublisher | None = None

    async def start(self) -> None:
        self.pool = await postgres_pool(STORE)
        async with self.pool.acquire() as conn:
            await conn.execute(SCHEMA)
        if os.environ.get("EVENT_BUS_ARN"):
            self.events = EventPublisher(aws_client("events"))

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def create(self, request: Request) -> JSONResponse:
        body = await read_json_object(request)
        email = body.get("email")
        if not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email):
            raise HTTPException(422, "email: a valid address is required")
        display = body.get("displayName")
        if display is not None and (not isinstance(display, str) or not 1 <= len(display) <= 100):
            raise HTTPException(422, "displayName: 1 to 100 characters")
        locale = body.get("locale", "en")
        if not isinstance(locale, str) or not LOCALE.match(locale):
            raise HTTPException(422, "locale: e.g. 'en' or 'en-GB'")
        opt_in = body.get("marketingOptIn", False)
        if not isinstance(opt_in, bool):
            raise HTTPException(422, "marketingOptIn: true or false")
        user_id = uuid.uuid4().hex
        row = await self.pool.fetchrow(
            "INSERT INTO users (user_id, email, display_name, locale, marketing_opt_in) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (email) DO NOTHING RETURNING *",
            user_id,
            email.lower(),
            display,
            locale,
            opt_in,
        )
        if row is None:
            raise HTTPException(409, "a user with this email already exists")
        user = _user(row)
        if self.events is not None:
            fields = {k: user[k] for k in ("userId", "email", "locale", "marketingOptIn")}
            if user["displayName"]:
                fields["displayName"] = user["displayName"]
            try:
                await self.events.publish("UserRegistered", event_detail(1, fields))
            except Exception:
                log.exception("UserRegistered not published", extra={"user_id": user_id})
        return JSONResponse(user, status_code=201, headers={"location": f"/users/{user_id}"})

    async def get(self, request: Request) -> JSONResponse:
        row = await self.pool.fetchrow("SELECT * FROM users WHERE user_id = $1", request.path_params["user_id"])
        if row is None:
            raise HTTPException(404, "no such user")
        return JSONResponse(_user(row))


def _user(row: Any) -> dict[str, Any]:
    return {
        "userId": row["user_id"],
        "email": row["email"],
        "displayName": row["display_name"],
        "locale": row["locale"],
        "marketingOptIn": row["marketing_opt_in"],
        "createdAt": row["created_at"].isoformat(),
    }


def build() -> Any:
    service = UserService()
    return create_app(
        "user",
        [
            Route("/users", service.create, methods=["POST"]),
            Route("/users/{user_id:str}", service.get, methods=["GET"]),
        ],
        checks=[ReadinessCheck(STORE, service.ping)],
        on_startup=[service.start],
        on_shutdown=[service.stop],
    )


app = build()
