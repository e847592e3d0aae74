"""Inventory service: stock levels. Owns the inventory PostgreSQL database (seed: RDS - Inventory)
and polls its own queue for order events (seed: Service A -> EventBridge -> SQS -> Service B)."""

from model.spec import PostgresStore, ServiceSpec, Subscription, reference_image

SPEC = ServiceSpec(
    name="inventory",
    description="Stock levels and reservations",
    # The reference app in apps/inventory/, built and pushed to its own ECR repository by `pulumi up`.
    **reference_image("inventory"),
    api_contract="interfaces/openapi/inventory.yaml",
    sizing={"cpu": 256, "memory": 512},
    public_paths=("/inventory",),
    accepts=("order",),  # the other side of order's `calls`
    data_stores=(PostgresStore(name="inventory-db", database_name="inventory"),),
    publishes=("InventoryLow",),
    subscribes=(Subscription(source="order", detail_types=("OrderPlaced", "OrderCancelled")),),
)
