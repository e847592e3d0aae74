"""Order service: places orders. Owns the orders DynamoDB table, calls inventory and payment,
and publishes order events (seed: Order Service -> SQS -> Notification Service)."""

from services.spec import DynamoStore, ServiceSpec, reference_image

SPEC = ServiceSpec(
    name="order",
    description="Order placement and lifecycle",
    # The reference app in apps/order/, built and pushed to its own ECR repository by `pulumi up`.
    **reference_image("order"),
    sizing={"cpu": 512, "memory": 1024},
    public_paths=("/orders",),
    calls=("inventory", "payment", "user"),  # each of them `accepts` order
    accepts=(),  # no service calls order through the mesh; it is reached from the load balancers only
    data_stores=(DynamoStore(name="orders-table", hash_key="orderId", ttl_attribute="expiresAt"),),
    publishes=("OrderPlaced", "OrderCancelled"),
)
