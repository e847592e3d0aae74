"""The policy pack's host process: started as the engine starts `pulumi-analyzer-policy-python`, then stopped.

pulumi/pulumi `pkg/resource/plugin/analyzer_plugin.go` (`NewPolicyAnalyzer`, `constructEnv`) and the
`pulumi-analyzer-policy-python` shim.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc

from offline.policy.config import PolicyProject
from offline.policy.protocol import CHANNEL_OPTIONS, OFFLINE_ENGINE_ADDRESS
from offline.policy.report import PolicyPackError


class PackProcess:
    """The policy pack's host process, started as the engine starts `pulumi-analyzer-policy-python`."""

    def __init__(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        self.argv = argv
        self._stderr: list[bytes] = []
        self._stdout_rest: list[bytes] = []
        self._port_line = bytearray()
        self._port_done = threading.Event()
        self._port_eof = False
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Its own process group, so stopping it also stops anything it started.
                start_new_session=os.name == "posix",
            )
        except OSError as exc:
            raise PolicyPackError(f"could not start policy pack: {' '.join(argv)}: {exc}") from None
        self._readers = [
            threading.Thread(target=self._read_stdout, name="policy-pack-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="policy-pack-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        # Like the engine: one byte at a time up to the first newline, which ends the port.
        while True:
            byte = stream.read(1)
            if not byte:
                self._port_eof = True
                self._port_done.set()
                return
            if byte == b"\n":
                break
            self._port_line += byte
        self._port_done.set()
        for line in iter(stream.readline, b""):
            self._stdout_rest.append(line)

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for line in iter(stream.readline, b""):
            self._stderr.append(line)

    def stderr_text(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    def log_text(self) -> str:
        return (b"".join(self._stderr) + b"".join(self._stdout_rest)).decode("utf-8", "replace")

    def wait_for_port(self, timeout: float) -> int:
        if not self._port_done.wait(timeout):
            self.stop()
            raise PolicyPackError(
                f"policy pack did not print its port within {timeout:g} s (started as: {' '.join(self.argv)})",
                stderr=self.stderr_text(),
                pid=self.pid,
            )
        if self._port_eof:
            code = self._wait_exit(5.0)
            self.stop()
            read = self._port_line.decode("utf-8", "replace")
            seen = f" (read {read!r})" if read else ""
            raise PolicyPackError(
                f"policy pack exited with code {code} before printing its port{seen}",
                stderr=self.stderr_text(),
                pid=self.pid,
            )
        text = self._port_line.decode("utf-8", "replace")
        try:
            return int(text)
        except ValueError:
            self.stop()
            raise PolicyPackError(
                f"policy pack wrote a non-numeric port to stdout ({text!r})", stderr=self.stderr_text(), pid=self.pid
            ) from None

    def settle(self, timeout: float) -> None:
        """After a failed RPC: give a dying pack `timeout` s to exit and its stderr reader time to catch up."""
        if self._wait_exit(timeout) is not None:
            self._readers[1].join(timeout=1.0)

    def _wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.name == "posix":
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def stop(self) -> None:
        """Stop the pack (and its process group), reap it and drain its output. Safe to call twice."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            if self._wait_exit(5.0) is None:
                self._signal(signal.SIGKILL if os.name == "posix" else signal.SIGTERM)
                self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=2.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


_SHIM_OPTIONS = frozenset({"virtualenv", "toolchain", "typechecker"})


def pack_command(pack_dir: Path, project: PolicyProject) -> tuple[list[str], dict[str, str]]:
    """argv and environment changes, as `pulumi-analyzer-policy-python` builds them."""
    python = sys.executable
    env_changes: dict[str, str] = {}
    virtualenv = str(project.options.get("virtualenv") or "")
    if virtualenv:
        venv = Path(virtualenv) if Path(virtualenv).is_absolute() else pack_dir.resolve() / virtualenv
        candidate = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        if not candidate.exists():
            raise PolicyPackError(f'"{venv}" doesn\'t appear to be a virtual environment')
        python = str(candidate)
        env_changes["PATH"] = f"{candidate.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    args = [OFFLINE_ENGINE_ADDRESS, "."]
    # The shim consumes -virtualenv itself (it picks the interpreter above) and the CLI handles the
    # toolchain options; only other options reach `python -m pulumi.policy`.
    for key, value in project.options.items():
        if key not in _SHIM_OPTIONS and str(value) != "":
            args.append(f"-{key}={value}")
    return [python, "-u", "-m", "pulumi.policy", *args], env_changes


def pack_environment(
    *,
    project: str,
    stack: str,
    env_changes: Mapping[str, str],
    stack_config: Mapping[str, str] | None,
    organization: str,
    dry_run: bool,
) -> dict[str, str]:
    """`constructEnv` in analyzer_plugin.go: the caller's environment plus the stack's identity and config."""
    env = dict(os.environ)
    env.update(env_changes)
    if "PATH" in env_changes:
        env.pop("PYTHONHOME", None)
    env["PULUMI_CONFIG"] = json.dumps(dict(stack_config or {}))
    if organization:
        env["PULUMI_ORGANIZATION"] = organization
    env["PULUMI_PROJECT"] = project
    env["PULUMI_STACK"] = stack
    env["PULUMI_DRY_RUN"] = "true" if dry_run else "false"
    return env


def connect(process: PackProcess, timeout: float) -> Any:
    """Wait for the pack's port, then for a gRPC channel to it. Stops the pack and raises on failure."""
    port = process.wait_for_port(timeout)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        channel.close()
        process.stop()
        raise PolicyPackError(
            f"could not connect to the policy pack on port {port} within {timeout:g} s",
            stderr=process.stderr_text(),
            pid=process.pid,
        ) from None
    return channel
