"""The notification service's spec (infrastructure side; not shipped in the Lambda package).

A Lambda consumer (seed: Order Service -> SQS -> Notification Service, and EventBridge -> Lambda):
order events arrive through its own SQS queue (buffered, retried, dead-lettered); payment, user and
inventory events invoke it directly from their EventBridge rules.
"""

from model.spec import ServiceSpec, Subscription

SPEC = ServiceSpec(
    name="notification",
    kind="lambda",
    notifies=True,  # publishes to the platform's notification topic
    # code_dir defaults to services/notification (handler.py; the contracts package ships beside it)
    description="Validates domain events against their contracts and publishes notifications to SNS",
    subscribes=(
        Subscription(source="order", detail_types=("OrderPlaced", "OrderCancelled"), delivery="queue"),
        Subscription(source="payment", detail_types=("PaymentCaptured",), delivery="direct"),
        Subscription(source="user", detail_types=("UserRegistered",), delivery="direct"),
        Subscription(source="inventory", detail_types=("InventoryLow",), delivery="direct"),
    ),
)
