"""User service: accounts and profiles. Owns the users PostgreSQL database (seed: RDS - Users)."""

from model.spec import PostgresStore, ServiceSpec, reference_image

SPEC = ServiceSpec(
    name="user",
    description="User accounts and profiles",
    # The reference app in apps/user/, built and pushed to its own ECR repository by `pulumi up`.
    **reference_image("user"),
    api_contract="interfaces/openapi/user.yaml",
    sizing={"cpu": 256, "memory": 512},
    public_paths=("/users",),
    accepts=("order",),  # the other side of order's `calls`
    data_stores=(PostgresStore(name="users-db", database_name="users"),),
    publishes=("UserRegistered",),
)
