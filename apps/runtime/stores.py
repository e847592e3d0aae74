"""Connections to a service's own stores, configured from what its StoreBinding injects.

Names follow `components/datastores.py`: a store `users-db` gives `USERS_DB_HOST`, `USERS_DB_PORT`,
`USERS_DB_NAME`, `USERS_DB_SSLMODE` (plain) and `USERS_DB_USERNAME`, `USERS_DB_PASSWORD` (secrets,
from the RDS-managed master secret); a Valkey store `payment-cache` gives `PAYMENT_CACHE_HOST`,
`_PORT`, `_USER`, `_REPLICATION_GROUP`, `_AUTH_MODE` (`iam`) and `_TLS`; a DynamoDB store gives
`<PREFIX>_NAME`. Locally the same variables point at a local PostgreSQL or Redis (`_AUTH_MODE=none`).
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from apps.runtime.settings import require_env

if TYPE_CHECKING:
    import asyncpg
    import redis.asyncio as aioredis

IAM_TOKEN_SECONDS = 900
"""ElastiCache IAM auth tokens are valid for 15 minutes (AWS ElastiCache docs, "Authenticating with IAM")."""
IAM_TOKEN_REFRESH_SECONDS = 600


def env_prefix(store_name: str) -> str:
    """`users-db` -> `USERS_DB` (the same rule as components/datastores.py)."""
    return store_name.upper().replace("-", "_")


async def postgres_pool(store: str, environ: Mapping[str, str] | None = None, **kwargs: Any) -> asyncpg.Pool:
    import asyncpg

    env = os.environ if environ is None else environ
    prefix = env_prefix(store)
    sslmode = env.get(f"{prefix}_SSLMODE", "require")
    ssl_arg: Any = None
    if sslmode in ("require", "verify-ca", "verify-full"):
        # RDS enforces TLS (rds.force_ssl=1). `require` encrypts without verifying the server
        # certificate, like libpq's sslmode=require; verify-* need the RDS CA bundle in the image.
        ssl_arg = sslmode if sslmode == "require" else ssl.create_default_context()
    pool = await asyncpg.create_pool(
        host=require_env(f"{prefix}_HOST", env),
        port=int(env.get(f"{prefix}_PORT", "5432")),
        database=require_env(f"{prefix}_NAME", env),
        user=require_env(f"{prefix}_USERNAME", env, what="injected from the RDS master secret"),
        password=require_env(f"{prefix}_PASSWORD", env, what="injected from the RDS master secret"),
        ssl=ssl_arg,
        min_size=1,
        max_size=int(env.get(f"{prefix}_POOL_SIZE", "5")),
        command_timeout=5,
        timeout=5,
        **kwargs,
    )
    assert pool is not None
    return pool


class ElastiCacheIAMProvider:
    """redis-py credential provider that signs ElastiCache IAM auth tokens with the task role.

    The token is a SigV4 presigned `GET https://<replication-group-id>/?Action=connect&User=<user>`
    without its scheme, valid 15 minutes (the recipe of redis-py's "Connecting to ElastiCache with
    IAM" docs and the ElastiCache user guide). A fresh one is signed every 10 minutes; an established
    connection stays authenticated (ElastiCache closes it after 12 hours).
    """

    def __init__(self, user: str, replication_group_id: str, region: str, session: Any = None) -> None:
        import botocore.session
        from botocore.model import ServiceId
        from botocore.signers import RequestSigner

        self.user = user
        self.replication_group_id = replication_group_id
        self.region = region
        session = session or botocore.session.get_session()
        self._signer = RequestSigner(
            ServiceId("elasticache"),
            region,
            "elasticache",
            "v4",
            session.get_credentials(),
            session.get_component("event_emitter"),
        )
        self._cached: tuple[float, str] | None = None

    def token(self) -> str:
        url = f"https://{self.replication_group_id}/?{urlencode({'Action': 'connect', 'User': self.user})}"
        signed = self._signer.generate_presigned_url(
            {"method": "GET", "url": url, "body": {}, "headers": {}, "context": {}},
            operation_name="connect",
            expires_in=IAM_TOKEN_SECONDS,
            region_name=self.region,
        )
        return str(signed).removeprefix("https://")

    def get_credentials(self) -> tuple[str, str]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > IAM_TOKEN_REFRESH_SECONDS:
            self._cached = (now, self.token())
        return self.user, self._cached[1]

    async def get_credentials_async(self) -> tuple[str, str]:
        return self.get_credentials()


def redis_client(store: str, environ: Mapping[str, str] | None = None) -> aioredis.Redis:
    import redis.asyncio as aioredis
    from redis.credentials import CredentialProvider

    env = os.environ if environ is None else environ
    prefix = env_prefix(store)
    mode = env.get(f"{prefix}_AUTH_MODE", "iam")
    kwargs: dict[str, Any] = {
        "host": require_env(f"{prefix}_HOST", env),
        "port": int(env.get(f"{prefix}_PORT", "6379")),
        "ssl": env.get(f"{prefix}_TLS", "true").lower() == "true",
        "socket_timeout": 2.0,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
        "decode_responses": True,
    }
    if mode == "iam":
        provider = ElastiCacheIAMProvider(
            require_env(f"{prefix}_USER", env),
            require_env(f"{prefix}_REPLICATION_GROUP", env),
            env.get("AWS_REGION", "us-east-1"),
        )

        class _Provider(CredentialProvider):
            def get_credentials(self) -> tuple[str, str]:
                return provider.get_credentials()

            async def get_credentials_async(self) -> tuple[str, str]:
                return provider.get_credentials()

        kwargs["credential_provider"] = _Provider()
    elif mode == "password":
        kwargs["username"] = env.get(f"{prefix}_USER") or None
        kwargs["password"] = require_env(f"{prefix}_PASSWORD", env)
    elif mode != "none":
        raise ValueError(f"{prefix}_AUTH_MODE = {mode!r}: expected iam, password or none")
    return aioredis.Redis(**kwargs)


def aws_client(service: str, environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 client in the task's region (credentials from the task role; `AWS_ENDPOINT_URL` is
    honoured by boto3 itself, e.g. for a local emulator)."""
    import boto3
    from botocore.config import Config

    env = os.environ if environ is None else environ
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10, tcp_keepalive=True
    )
    return boto3.client(service, region_name=env.get("AWS_REGION", "us-east-1"), config=config)
