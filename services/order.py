"""Order service: places orders. Owns the orders DynamoDB table (also its outbox, which publishes
OrderPlaced/OrderCancelled through an EventBridge Pipe) and the order-history read model; orchestrates the
order-placement saga over inventory and payment; calls inventory, payment and user through the mesh."""

from model.spec import (
    DynamoStore,
    Outbox,
    ReadModel,
    Saga,
    SagaCommand,
    SagaStep,
    ServiceSpec,
    Subscription,
    reference_image,
)

SPEC = ServiceSpec(
    name="order",
    description="Order placement and lifecycle",
    # The reference app in apps/order/, built and pushed to its own ECR repository by `pulumi up`.
    **reference_image("order"),
    sizing={"cpu": 512, "memory": 1024},
    public_paths=("/orders",),
    calls=("inventory", "payment", "user"),  # each of them `accepts` order
    accepts=(),  # no service calls order through the mesh; it is reached from the load balancers only
    uses=(
        "user.getUser",
        "inventory.reserveStock",
        "inventory.releaseReservation",
        "payment.authorizePayment",
        "payment.voidPayment",
    ),
    api_contract="interfaces/openapi/order.yaml",
    data_stores=(
        # Orders AND their outbox: the app writes the order and an `outbox#<eventId>` item in one transaction;
        # the table's stream feeds the outbox pipe (components/patterns/outbox.py).
        DynamoStore(name="orders-table", hash_key="orderId", ttl_attribute="expiresAt", stream=True),
        # CQRS read side: a user's orders, kept by the order-history projection.
        DynamoStore(name="order-history", hash_key="userId", range_key="orderId"),
    ),
    publishes=("OrderPlaced", "OrderCancelled"),
    outbox=Outbox(store="orders-table"),
    read_models=(
        ReadModel(
            name="order-history",
            store="order-history",
            key=("userId", "orderId"),
            fields=("total", "items", "occurredAt", "reason"),
            subscribes=(Subscription(source="order", detail_types=("OrderPlaced", "OrderCancelled")),),
        ),
    ),
    sagas=(
        Saga(
            name="order-placement",
            steps=(
                SagaStep(
                    name="ReserveInventory",
                    participant="inventory",
                    command="ReserveInventory",
                    compensation="ReleaseInventory",
                ),
                SagaStep(
                    name="AuthorizePayment",
                    participant="payment",
                    command="AuthorizePayment",
                    compensation="VoidPayment",
                ),
                SagaStep(name="ConfirmOrder", participant="order", command="ConfirmOrder", heartbeat_seconds=None),
            ),
            on_failure=SagaCommand(participant="order", command="CancelOrder"),
        ),
    ),
)
