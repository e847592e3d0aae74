"""Order service: places orders. Owns the orders DynamoDB table, calls inventory and payment,
and publishes order events (seed: Order Service -> SQS -> Notification Service)."""

from services.spec import DynamoStore, ServiceSpec

SPEC = ServiceSpec(
    name="order",
    description="Order placement and lifecycle",
    image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
    run_as_user="101:101",  # the nginx-unprivileged placeholder image's user
    container_port=8080,
    health_check_path="/health",
    sizing={"cpu": 512, "memory": 1024},
    public_paths=("/orders",),
    calls=("inventory", "payment", "user"),  # each of them `accepts` order
    accepts=(),  # no service calls order through the mesh; it is reached from the load balancers only
    data_stores=(DynamoStore(name="orders-table", hash_key="orderId", ttl_attribute="expiresAt"),),
    publishes=("OrderPlaced", "OrderCancelled"),
)
