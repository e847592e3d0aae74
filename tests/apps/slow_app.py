"""A tiny app on the service template for the graceful-shutdown test (served by apps.runtime.serve)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apps.runtime import create_app


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("seconds", "1")))
    return JSONResponse({"done": True})


async def closing() -> None:
    logging.getLogger("tests.slow_app").info("closing pools")


app = create_app("slow", [Route("/slow", slow)], on_shutdown=[closing])
