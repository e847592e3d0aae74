"""Session-wide real servers for the service tests (see servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.apps.servers import Postgres, Redis, postgres_server, redis_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[Redis]:
    with redis_server() as server:
        yield server
