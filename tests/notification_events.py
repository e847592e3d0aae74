"""Factories for realistic domain events, EventBridge envelopes and SQS records (notification tests).

Every factory returns a fresh, contract-valid document; tests break exactly the part they are about.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from contracts import PUBLISHERS

ACCOUNT = "123456789012"
REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dev-notification-events"


def _money(value: str, currency: str = "EUR") -> dict[str, str]:
    return {"value": value, "currency": currency}


def detail(detail_type: str, version: int = 1, *, correlation_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid `detail` of `detail_type` v`version`; keyword arguments override or add fields."""
    base: dict[str, Any] = {
        "version": version,
        "correlationId": correlation_id or f"corr-{uuid.uuid4()}",
        "occurredAt": "2025-03-14T09:26:53.589Z",
    }
    if detail_type == "OrderPlaced":
        base |= {
            "orderId": "ord_01JPB7Q3W2",
            "userId": "usr_7f3a9c",
            "items": [
                {"sku": "SKU-TSHIRT-M", "quantity": 2, "unitPrice": _money("19.90")},
                {"sku": "SKU-MUG", "quantity": 1, "unitPrice": _money("8.50")},
            ],
            "total": _money("48.30"),
        }
        if version >= 2:
            base["estimatedDeliveryAt"] = "2025-03-17T18:00:00+01:00"
    elif detail_type == "OrderCancelled":
        base |= {
            "orderId": "ord_01JPB7Q3W2",
            "userId": "usr_7f3a9c",
            "reason": "customer_request",
            "refundAmount": _money("48.30"),
        }
    elif detail_type == "PaymentCaptured":
        base |= {
            "paymentId": "pay_9d2e41",
            "orderId": "ord_01JPB7Q3W2",
            "userId": "usr_7f3a9c",
            "amount": _money("48.30"),
            "method": "card",
            "cardLast4": "4242",
        }
    elif detail_type == "UserRegistered":
        base |= {
            "userId": "usr_7f3a9c",
            "email": "ada@example.com",
            "displayName": "Ada L.",
            "locale": "en-GB",
            "marketingOptIn": False,
        }
    elif detail_type == "InventoryLow":
        base |= {"sku": "SKU-MUG", "warehouseId": "wh-eu-1", "quantityOnHand": 3, "reorderThreshold": 10}
    else:
        raise ValueError(f"no factory for {detail_type}")
    return base | fields


def envelope(
    detail_type: str,
    event_detail: dict[str, Any] | None = None,
    *,
    source: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The full EventBridge event, as delivered to an SQS target or to a Lambda invoked by a rule."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source or PUBLISHERS.get(detail_type, "microservices.unknown"),
        "account": ACCOUNT,
        "time": "2025-03-14T09:26:54Z",
        "region": REGION,
        "resources": [],
        "detail": event_detail if event_detail is not None else detail(detail_type),
    }


def sqs_record(
    body: dict[str, Any] | str, *, message_id: str | None = None, queue_arn: str = QUEUE_ARN
) -> dict[str, Any]:
    """An SQS record as Lambda's event source mapping delivers it (a dict body is JSON-encoded)."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1741944414000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1741944414005",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
