"""Real PostgreSQL and Redis servers for the service tests, started once per test session on loopback.

They come from Debian's packages (`postgresql`, `redis-server`; `.ci/run` installs them when missing).
PostgreSQL refuses to run as root, so under root (CI) the cluster is initialised and run as the
`postgres` system user that the package creates. Data lives in a temporary directory with fsync off:
these servers hold test data only and are stopped (and deleted) at the end of the session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def postgres_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    raise RuntimeError(
        f"PostgreSQL's {tool} is not installed: `apt-get install -y postgresql` (.ci/run does this when missing)"
    )


@dataclass
class Postgres:
    port: int
    user: str

    def env(self, prefix: str, database: str) -> dict[str, str]:
        """The variables a PostgresStore binding gives its owner (components/datastores.py)."""
        return {
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_NAME": database,
            f"{prefix}_USERNAME": self.user,
            f"{prefix}_PASSWORD": "unused-with-trust-auth",
            f"{prefix}_SSLMODE": "disable",
        }

    def create_database(self, name: str) -> None:
        subprocess.run(
            [
                postgres_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                f'DROP DATABASE IF EXISTS "{name}"',
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
        )


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    root = tempfile.mkdtemp(prefix="apps-pg-")
    demote: Callable[[], None] | None = None
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        user = "postgres"

        def demote() -> None:
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)

    data = Path(root) / "data"
    subprocess.run(
        [postgres_bin("initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync", "-N"],
        check=True,
        capture_output=True,
        preexec_fn=demote,
        cwd=root,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            root,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=demote,
        cwd=root,
    )
    try:
        _wait_for_port(port, process, "postgres")
        # Accepting TCP is not yet accepting queries: wait until pg_isready says so.
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("postgres never became ready")
            time.sleep(0.05)
        yield Postgres(port=port, user=user)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Redis:
    port: int

    def env(self, prefix: str) -> dict[str, str]:
        """What a RedisStore binding gives its owner, with local auth and no TLS."""
        return {
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_AUTH_MODE": "none",
            f"{prefix}_TLS": "false",
        }


@contextlib.contextmanager
def redis_server() -> Iterator[Redis]:
    binary = shutil.which("valkey-server") or shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: `apt-get install -y redis-server` (.ci/run does this)")
    root = tempfile.mkdtemp(prefix="apps-redis-")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            root,
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, "redis-server")
        yield Redis(port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


class LoopbackServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread: real HTTP, real lifespan.

    A reference service's app is served wrapped in `ContractResponses`: every response it gives is
    checked against its OpenAPI contract (see contract_responses.py and conftest.py)."""

    def __init__(self, app: object, port: int | None = None) -> None:
        import threading

        from tests.apps.contract_responses import wrap

        app = wrap(app)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start (see its log)")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
