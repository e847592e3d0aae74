"""Payment service: captures payments for orders. Private (only the order service calls it);
owns an ElastiCache cache for idempotency keys and sessions (seed: ElastiCache)."""

from model.spec import RedisStore, SecretRef, ServiceSpec, reference_image

SPEC = ServiceSpec(
    name="payment",
    description="Payment capture and refunds",
    # The reference app in apps/payment/, built and pushed to its own ECR repository by `pulumi up`.
    **reference_image("payment"),
    api_contract="interfaces/openapi/payment.yaml",
    sizing={"cpu": 512, "memory": 1024},
    accepts=("order",),  # the other side of order's `calls`
    data_stores=(RedisStore(name="payment-cache"),),
    publishes=("PaymentCaptured",),
    secrets=(SecretRef(env_name="PAYMENT_PROVIDER_API_KEY", description="API key of the card processor"),),
)
