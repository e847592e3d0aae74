"""Saga participation: answer the commands an orchestration workflow sends to this service's queue.

The order-placement saga (Step Functions Standard, see components/patterns/saga.py where it exists)
sends each step as a COMMAND to the participant's own SQS queue (`SAGA_COMMAND_QUEUE_URL`) with a task
token and waits (`sqs:sendMessage.waitForTaskToken`). A command body is:

    {"saga": "order-placement", "sagaId": <execution name>, "step": "ReserveInventory",
     "command": "ReserveInventory", "idempotencyKey": "<sagaId>:ReserveInventory",
     "taskToken": "...", "input": {...the business transaction...}, "results": {<step>: <output>}}

`SagaParticipant` runs the handler registered for `command` on the service's own data and answers
`SendTaskSuccess(output)`; a handler that refuses for a business reason raises `SagaRefusal(error)`
(e.g. `Payment.Declined`), answered with `SendTaskFailure` so the workflow compensates; any other
error is answered `Saga.Transient`, which the workflow retries with backoff and jitter. Handlers
must be idempotent by `idempotencyKey`: SQS and the workflow's retries deliver a command more than
once. The message is deleted once answered (or when the token is no longer valid: the workflow has
moved on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from apps.runtime.context import bind, continue_trace, pick_correlation_id, unbind
from apps.runtime.settings import require_env

log = logging.getLogger("apps.saga")

COMMAND_QUEUE_ENV = "SAGA_COMMAND_QUEUE_URL"
TRANSIENT_ERROR = "Saga.Transient"

CommandHandler = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]
"""`handler(command)` -> the step's output (a JSON object)."""


class SagaRefusal(Exception):
    """A business refusal: the step fails for good and the workflow compensates."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


class SagaParticipant:
    def __init__(
        self,
        sqs: Any,
        sfn: Any,
        handlers: Mapping[str, CommandHandler],
        queue_url: str | None = None,
        *,
        wait_seconds: int | None = None,
    ) -> None:
        self.sqs, self.sfn = sqs, sfn
        self.handlers = dict(handlers)
        self.queue_url = queue_url or require_env(COMMAND_QUEUE_ENV)
        self.wait_seconds = (
            wait_seconds if wait_seconds is not None else int(os.environ.get("EVENT_WAIT_SECONDS", "10"))
        )

    async def poll_once(self, wait_seconds: int | None = None) -> int:
        answer = await asyncio.to_thread(
            self.sqs.receive_message,
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
        )
        handled = 0
        for message in answer.get("Messages", []):
            if await self.handle(message["Body"]):
                await asyncio.to_thread(
                    self.sqs.delete_message, QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                handled += 1
        return handled

    async def handle(self, body: str) -> bool:
        """Run one command and answer the workflow; False leaves the message for redelivery/the DLQ."""
        try:
            command = json.loads(body)
            token, name = str(command["taskToken"]), str(command["command"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable saga command left for the DLQ", extra={"error": repr(exc)})
            return False
        tokens = bind(pick_correlation_id(str(command.get("sagaId") or ""), None), continue_trace(None))
        try:
            handler = self.handlers.get(name)
            try:
                if handler is None:
                    raise SagaRefusal("Saga.UnknownCommand", f"this service does not handle {name}")
                output = await handler(command)
            except SagaRefusal as refusal:
                log.info("saga step refused", extra={"command": name, "error": refusal.error})
                return await self._answer(
                    self.sfn.send_task_failure, taskToken=token, error=refusal.error, cause=refusal.cause[:32768]
                )
            except Exception as exc:
                log.exception("saga step failed", extra={"command": name})
                return await self._answer(
                    self.sfn.send_task_failure, taskToken=token, error=TRANSIENT_ERROR, cause=repr(exc)[:32768]
                )
            log.info("saga step done", extra={"command": name, "saga_id": command.get("sagaId")})
            return await self._answer(self.sfn.send_task_success, taskToken=token, output=json.dumps(dict(output)))
        finally:
            unbind(tokens)

    async def _answer(self, call: Callable[..., Any], **kwargs: Any) -> bool:
        try:
            await asyncio.to_thread(call, **kwargs)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                log.warning("saga token no longer valid; command dropped", extra={"code": code})
                return True
            log.exception("could not answer the workflow; the command will be redelivered")
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        log.info("answering saga commands", extra={"queue": self.queue_url, "commands": sorted(self.handlers)})
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:
                log.exception("saga command receive failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
