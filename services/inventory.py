"""Inventory service: stock levels. Owns the inventory PostgreSQL database (seed: RDS - Inventory)
and polls its own queue for order events (seed: Service A -> EventBridge -> SQS -> Service B)."""

from services.spec import PostgresStore, ServiceSpec, Subscription

SPEC = ServiceSpec(
    name="inventory",
    description="Stock levels and reservations",
    image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
    run_as_user="101:101",  # the nginx-unprivileged placeholder image's user
    container_port=8080,
    health_check_path="/health",
    sizing={"cpu": 256, "memory": 512},
    public_paths=("/inventory",),
    accepts=("order",),  # the other side of order's `calls`
    data_stores=(PostgresStore(name="inventory-db", database_name="inventory"),),
    publishes=("InventoryLow",),
    subscribes=(Subscription(source="order", detail_types=("OrderPlaced", "OrderCancelled")),),
)
