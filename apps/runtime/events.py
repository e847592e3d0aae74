"""Domain events: build a contract-shaped `detail`, publish it to the bus, consume the service's queue.

* `event_detail()` adds what every contract requires (`version`, `correlationId`, `occurredAt`;
  see services/notification/contracts.py) to the event's own fields.
* `EventPublisher.publish()` puts one event on the bus the task may publish to (`EVENT_BUS_ARN`,
  source `EVENT_SOURCE` = `microservices.<service>`: the bus policy accepts nothing else).
* `QueueConsumer` long-polls the service's own SQS queues (`EVENT_QUEUE_URLS`, fed by EventBridge
  rules, each with a dead-letter queue) and hands each EventBridge event to a handler. A message is
  deleted only after its handler returned; a handler that raises leaves it for redelivery (after
  `maxReceiveCount` it moves to the DLQ). Handlers must be idempotent: SQS delivers at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from apps.runtime.context import bind, continue_trace, current_correlation_id, pick_correlation_id, unbind
from apps.runtime.settings import require_env

log = logging.getLogger("apps.events")

Handler = Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[None]]
"""`handler(detail_type, detail, event)`."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_detail(version: int, fields: Mapping[str, Any], correlation_id: str | None = None) -> dict[str, Any]:
    return {
        "version": version,
        "correlationId": correlation_id or current_correlation_id() or "none",
        "occurredAt": now_iso(),
        **fields,
    }


class EventPublisher:
    def __init__(self, client: Any, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.client = client
        self.bus = require_env("EVENT_BUS_ARN", env)
        self.source = require_env("EVENT_SOURCE", env)

    async def publish(self, detail_type: str, detail: Mapping[str, Any]) -> str:
        entry = {
            "EventBusName": self.bus,
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":")),
        }
        answer = await asyncio.to_thread(self.client.put_events, Entries=[entry])
        result = answer["Entries"][0]
        if answer.get("FailedEntryCount") or "EventId" not in result:
            raise RuntimeError(
                f"PutEvents rejected {detail_type}: {result.get('ErrorCode')} {result.get('ErrorMessage')}"
            )
        log.info("event published", extra={"detail_type": detail_type, "event_id": result["EventId"]})
        return str(result["EventId"])


class QueueConsumer:
    def __init__(
        self,
        client: Any,
        handler: Handler,
        queue_urls: list[str] | None = None,
        *,
        wait_seconds: int | None = None,
        batch: int = 10,
    ) -> None:
        if queue_urls is None:
            queue_urls = [u for u in require_env("EVENT_QUEUE_URLS").split(",") if u]
        self.client = client
        self.handler = handler
        self.queue_urls = queue_urls
        # Long polling, short enough that a stopping task is not held up (ECS stopTimeout is 30 s).
        self.wait_seconds = (
            wait_seconds if wait_seconds is not None else int(os.environ.get("EVENT_WAIT_SECONDS", "10"))
        )
        self.batch = batch

    async def poll_once(self, queue_url: str, wait_seconds: int | None = None) -> tuple[int, int]:
        """Receive one batch and handle it; returns (handled, failed)."""
        answer = await asyncio.to_thread(
            self.client.receive_message,
            QueueUrl=queue_url,
            MaxNumberOfMessages=self.batch,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        handled = failed = 0
        for message in answer.get("Messages", []):
            if await self._handle(message):
                await asyncio.to_thread(
                    self.client.delete_message, QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                handled += 1
            else:
                failed += 1
        return handled, failed

    async def _handle(self, message: Mapping[str, Any]) -> bool:
        try:
            event = json.loads(message["Body"])
            detail_type, detail = str(event["detail-type"]), dict(event["detail"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error(
                "unreadable message left for the DLQ",
                extra={"message_id": message.get("MessageId"), "error": repr(exc)},
            )
            return False
        tokens = bind(
            pick_correlation_id(str(detail.get("correlationId") or ""), None),
            continue_trace(str(event.get("trace-header") or "")),
        )
        try:
            await self.handler(detail_type, detail, event)
        except Exception:
            log.exception("event handler failed", extra={"detail_type": detail_type, "event_id": event.get("id")})
            return False
        finally:
            unbind(tokens)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every queue until `stop` is set (the app's background task)."""
        log.info("consuming", extra={"queues": self.queue_urls})
        while not stop.is_set():
            for url in self.queue_urls:
                try:
                    await self.poll_once(url)
                except Exception:
                    log.exception("receive failed", extra={"queue": url})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=5)
                if stop.is_set():
                    break
