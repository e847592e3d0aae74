"""Session-wide real servers for the service tests (see servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.apps import contract_responses
from tests.apps.servers import Postgres, Redis, postgres_server, redis_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


@pytest.fixture(autouse=True)
def responses_match_the_contracts() -> Iterator[None]:
    """Fails a test when a reference app answered it (or the fixtures before it) with a response its
    OpenAPI contract does not declare: status code, media type or body schema."""
    yield
    problems = contract_responses.drain()
    if problems:
        pytest.fail("responses that break the OpenAPI contracts:\n" + "\n".join(problems), pytrace=False)
