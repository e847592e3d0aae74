"""User service: accounts and profiles. Owns the users PostgreSQL database (seed: RDS - Users)."""

from services.spec import PostgresStore, ServiceSpec

SPEC = ServiceSpec(
    name="user",
    description="User accounts and profiles",
    image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
    run_as_user="101:101",  # the nginx-unprivileged placeholder image's user
    container_port=8080,
    health_check_path="/health",
    sizing={"cpu": 256, "memory": 512},
    public_paths=("/users",),
    accepts=("order",),  # the other side of order's `calls`
    data_stores=(PostgresStore(name="users-db", database_name="users"),),
    publishes=("UserRegistered",),
)
