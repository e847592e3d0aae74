"""Payment service: captures payments for orders. Private (only the order service calls it);
owns an ElastiCache cache for idempotency keys and sessions (seed: ElastiCache)."""

from services.spec import RedisStore, SecretRef, ServiceSpec

SPEC = ServiceSpec(
    name="payment",
    description="Payment capture and refunds",
    image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
    run_as_user="101:101",  # the nginx-unprivileged placeholder image's user
    container_port=8080,
    health_check_path="/health",
    sizing={"cpu": 512, "memory": 1024},
    accepts=("order",),  # the other side of order's `calls`
    data_stores=(RedisStore(name="payment-cache"),),
    publishes=("PaymentCaptured",),
    secrets=(SecretRef(env_name="PAYMENT_PROVIDER_API_KEY", description="API key of the card processor"),),
)
