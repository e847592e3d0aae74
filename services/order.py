"""Order service: places orders. Owns the orders DynamoDB table, its event store (the outbox that
publishes OrderPlaced/OrderCancelled) and the order-history read model; orchestrates the
order-placement saga over inventory and payment; calls inventory, payment and user through the mesh."""

from services.spec import (
    DynamoStore,
    Outbox,
    ReadModel,
    Saga,
    SagaCommand,
    SagaStep,
    ServiceSpec,
    Subscription,
)

SPEC = ServiceSpec(
    name="order",
    description="Order placement and lifecycle",
    image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
    run_as_user="101:101",  # the nginx-unprivileged placeholder image's user
    container_port=8080,
    health_check_path="/health",
    sizing={"cpu": 512, "memory": 1024},
    public_paths=("/orders",),
    calls=("inventory", "payment", "user"),
    uses=("inventory.getStock", "payment.getPayment", "user.getUser"),
    api_contract="interfaces/openapi/order.yaml",
    data_stores=(
        DynamoStore(name="orders-table", hash_key="orderId", ttl_attribute="expiresAt"),
        # Event store + outbox: one item per domain event, written in the same transaction as the order.
        DynamoStore(name="order-events", hash_key="aggregateId", range_key="sequence", range_key_type="N", stream=True),
        # CQRS read side: a user's orders, kept by the order-history projection.
        DynamoStore(name="order-history", hash_key="userId", range_key="orderId"),
    ),
    publishes=("OrderPlaced", "OrderCancelled"),
    outbox=Outbox(store="order-events"),
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
