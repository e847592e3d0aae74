"""Run a CrossGuard policy pack over a recorded `Plan`, speaking the Analyzer gRPC protocol as the engine does.

`pulumi preview --policy-pack policies` does four things with a Python pack, and this module does the same
ones, in the same order, with the same messages (pulumi/pulumi, `pkg/resource/plugin/analyzer_plugin.go`,
`pkg/engine/update.go` `installAndLoadPolicyPlugins`, `pkg/resource/deploy/step_generator.go`):

1. Start the pack the way the `pulumi-analyzer-policy-python` shim does: `python -u -m pulumi.policy
   <engine-address> .` with the pack directory as working directory, the runtime options of
   `PulumiPolicy.yaml` appended as `-name=value`, and `PULUMI_PROJECT`/`PULUMI_STACK`/`PULUMI_DRY_RUN`/
   `PULUMI_CONFIG` in the environment. The first line on stdout is the port of its Analyzer server.
2. `Handshake` and `ConfigureStack` (both optional for a pack), `GetAnalyzerInfo`, then `Configure` with the
   config reconciled from the policies' schema defaults, the pack's initial config and the user's config
   (what `--policy-pack-config` gives), validated against the policies' config schemas.
3. For every registered resource, `Remediate` and then `Analyze` with its inputs. The engine does this for
   every resource registration that reaches the step generator (custom resources, components, providers
   and the stack alike), so this runner does too.
4. `AnalyzeStack` once with every resource's outputs, parent, dependencies and property dependencies.

Properties are marshalled as the engine marshals them for analyzers (`MarshalOptions{KeepUnknowns,
KeepSecrets, SkipInternalKeys}`): secrets stay secret signature objects, unknowns stay the unknown
sentinel, output values are unwrapped, resource references become their ID (or URN for components), and
keys starting with `__` are dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import grpc
import jsonschema
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from offline.plan import UNKNOWN, Plan, PlannedResource

__all__ = [
    "PolicyConfigError",
    "PolicyInfo",
    "PolicyNotApplicable",
    "PolicyPackError",
    "PolicyRemediation",
    "PolicyReport",
    "PolicyRunnerError",
    "PolicyViolation",
    "build_analyze_request",
    "build_analyze_stack_request",
    "engine_properties",
    "format_report",
    "run_policy_pack",
]

EnforcementLevel = Literal["advisory", "mandatory", "remediate", "disabled"]
ENFORCEMENT_LEVELS: tuple[EnforcementLevel, ...] = ("advisory", "mandatory", "remediate", "disabled")

# Signatures of the special objects in the engine's property encoding (sdk/go/common/resource/properties.go).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
RESOURCE_REFERENCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"

# The pulumi.policy host never dials the engine (it only parses the argument), and there is no engine
# offline, so we pass an address nothing listens on rather than invent a server.
OFFLINE_ENGINE_ADDRESS = "127.0.0.1:0"

# Same limit as the engine's gRPC channels to plugins (rpcutil.GrpcChannelOptions): 400 MiB.
_MAX_MESSAGE_BYTES = 400 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
]

_LEVEL_FROM_PROTO: dict[int, EnforcementLevel] = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_LEVEL_TO_PROTO = {level: value for value, level in _LEVEL_FROM_PROTO.items()}
_SEVERITY_FROM_PROTO = {
    analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED: "",
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}
_POLICY_TYPE_FROM_PROTO = {
    analyzer_pb2.POLICY_TYPE_UNKNOWN: "unknown",
    analyzer_pb2.POLICY_TYPE_RESOURCE: "resource",
    analyzer_pb2.POLICY_TYPE_STACK: "stack",
}


# --- errors and results ---------------------------------------------------------------------------------


class PolicyPackError(RuntimeError):
    """The pack could not be started, crashed, or failed an RPC. The message includes its stderr."""

    def __init__(self, message: str, *, stderr: str = "", pid: int | None = None) -> None:
        detail = stderr.strip()
        super().__init__(f"{message}\n--- policy pack stderr ---\n{detail}" if detail else message)
        self.stderr = stderr
        self.pid = pid


class PolicyConfigError(PolicyPackError):
    """The policy pack config is unreadable or does not match the policies' config schemas."""


@dataclass(frozen=True)
class PolicyInfo:
    """One policy as `GetAnalyzerInfo` describes it (enforcement level as configured for this run)."""

    name: str
    description: str
    enforcement_level: EnforcementLevel
    policy_type: str
    """'resource', 'stack' or 'unknown'."""
    severity: str = ""
    display_name: str = ""
    config_schema: Mapping[str, Any] = field(default_factory=dict)
    """JSON schema of each config property, by property name."""
    required_config: tuple[str, ...] = ()
    remediation: str = ""


@dataclass(frozen=True)
class PolicyViolation:
    """One `AnalyzeDiagnostic`, attributed to a resource URN as the engine attributes it."""

    policy_name: str
    policy_pack_name: str
    policy_pack_version: str
    enforcement_level: EnforcementLevel
    urn: str
    message: str
    """As the pack sent it; the Python SDK puts the policy description on the first line."""
    description: str
    severity: str = ""

    @property
    def resource_type(self) -> str:
        return urn_type(self.urn)

    @property
    def resource_name(self) -> str:
        return urn_name(self.urn)


@dataclass(frozen=True)
class PolicyNotApplicable:
    policy_name: str
    urn: str
    reason: str


@dataclass(frozen=True)
class PolicyRemediation:
    """A remediation the pack applied to a resource's inputs before it was analyzed."""

    policy_name: str
    policy_pack_name: str
    policy_pack_version: str
    urn: str
    description: str


@dataclass
class PolicyReport:
    """What one run of a policy pack over a plan found."""

    pack_name: str
    pack_version: str
    pack_path: str
    """The pack directory as given, which the CLI shows as `(local: <path>)`."""
    policies: list[PolicyInfo] = field(default_factory=list)
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The reconciled config sent with `Configure`: {policy: {"enforcementLevel": ..., **properties}}."""
    violations: list[PolicyViolation] = field(default_factory=list)
    not_applicable: list[PolicyNotApplicable] = field(default_factory=list)
    remediations: list[PolicyRemediation] = field(default_factory=list)
    pack_log: str = ""
    """What the pack wrote to stderr, and to stdout after its port line."""
    pack_pid: int | None = None

    @property
    def mandatory(self) -> list[PolicyViolation]:
        return [v for v in self.violations if v.enforcement_level == "mandatory"]

    @property
    def advisory(self) -> list[PolicyViolation]:
        return [v for v in self.violations if v.enforcement_level == "advisory"]

    @property
    def has_mandatory(self) -> bool:
        return any(v.enforcement_level == "mandatory" for v in self.violations)

    def counts(self) -> dict[str, int]:
        result = {"mandatory": 0, "advisory": 0}
        for violation in self.violations:
            result[violation.enforcement_level] = result.get(violation.enforcement_level, 0) + 1
        return result


# --- URNs ------------------------------------------------------------------------------------------------


def urn_type(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent types$>type::<name>` -> type (the engine's `URN.Type()`)."""
    parts = urn.split("::", 3)
    return parts[2].rsplit("$", 1)[-1] if len(parts) == 4 else ""


def urn_name(urn: str) -> str:
    parts = urn.split("::", 3)
    return parts[3] if len(parts) == 4 else urn


def root_stack_urn(project: str, stack: str) -> str:
    """`resource.DefaultRootStackURN`: where the engine files stack-policy violations without a known URN."""
    return f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"


# --- property marshalling -------------------------------------------------------------------------------


def _secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "value": value}


def _engine_value(value: Any, skip_internal_keys: bool, path: str) -> Any:
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_engine_value(v, skip_internal_keys, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, Mapping):
        raise TypeError(f"cannot marshal {type(value).__name__} at {path!r} as a resource property")
    sig = value.get(SIG_KEY)
    if sig == SECRET_SIG:
        return _secret(_engine_value(value.get("value"), skip_internal_keys, path))
    if sig == OUTPUT_VALUE_SIG:
        # Analyzers get no output values: unknown ones become the unknown sentinel, secret ones secrets.
        inner = _engine_value(value["value"], skip_internal_keys, path) if "value" in value else UNKNOWN
        return _secret(inner) if value.get("secret") else inner
    if sig == RESOURCE_REFERENCE_SIG:
        # Without KeepResources a reference is its ID (unknown while empty), or its URN for a component.
        if "id" in value:
            return UNKNOWN if value["id"] in ("", None) else value["id"]
        return value.get("urn", "")
    return {
        key: _engine_value(item, skip_internal_keys, f"{path}.{key}" if path else key)
        for key, item in value.items()
        if not (skip_internal_keys and key.startswith("__"))
    }


def engine_properties(properties: Mapping[str, Any], *, skip_internal_keys: bool = True) -> struct_pb2.Struct:
    """Marshal a plan's property map into the Struct the engine sends to analyzers."""
    struct = struct_pb2.Struct()
    struct.update(_engine_value(dict(properties), skip_internal_keys, ""))
    return struct


def _resource_options(resource: PlannedResource, *, with_parent: bool) -> analyzer_pb2.AnalyzerResourceOptions:
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=resource.protect,
        deleteBeforeReplace=resource.delete_before_replace,
        # The plan keeps a bool; the engine only marks it defined when the program set it.
        deleteBeforeReplaceDefined=resource.delete_before_replace,
        additionalSecretOutputs=list(resource.secret_outputs),
        # Analyze carries the parent in the options; AnalyzeStack carries it on the resource only.
        parent=resource.parent if with_parent else "",
    )
    options.customTimeouts.SetInParent()  # the engine always sends the (zero) timeouts
    return options


def _provider_resource(
    resource: PlannedResource, by_urn: Mapping[str, PlannedResource]
) -> analyzer_pb2.AnalyzerProviderResource | None:
    if not resource.provider:
        return None
    provider = by_urn.get(resource.provider.rsplit("::", 1)[0])
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        urn=provider.urn,
        type=provider.type,
        name=urn_name(provider.urn),
        properties=engine_properties(provider.inputs),
    )


def build_analyze_request(
    resource: PlannedResource,
    by_urn: Mapping[str, PlannedResource],
    *,
    properties: Mapping[str, Any] | None = None,
    skip_internal_keys: bool = True,
) -> analyzer_pb2.AnalyzeRequest:
    """The request the step generator sends for one resource (Analyze, and Remediate without key skipping)."""
    request = analyzer_pb2.AnalyzeRequest(
        urn=resource.urn,
        type=resource.type,
        name=urn_name(resource.urn),
        properties=engine_properties(
            resource.inputs if properties is None else properties, skip_internal_keys=skip_internal_keys
        ),
        options=_resource_options(resource, with_parent=True),
    )
    provider = _provider_resource(resource, by_urn)
    if provider is not None:
        request.provider.CopyFrom(provider)
    return request


def build_analyze_stack_request(plan: Plan) -> analyzer_pb2.AnalyzeStackRequest:
    """`stepGenerator.AnalyzeResources`: every resource's outputs with parent and dependencies."""
    by_urn = plan.by_urn()
    request = analyzer_pb2.AnalyzeStackRequest()
    for resource in plan.resources:
        item = request.resources.add(
            urn=resource.urn,
            type=resource.type,
            name=urn_name(resource.urn),
            properties=engine_properties(resource.outputs),
            options=_resource_options(resource, with_parent=False),
            parent=resource.parent,
            dependencies=list(resource.dependencies),
        )
        for key, urns in resource.property_dependencies.items():
            if urns:  # the engine skips properties without dependencies
                item.propertyDependencies[key].urns.extend(urns)
        provider = _provider_resource(resource, by_urn)
        if provider is not None:
            item.provider.CopyFrom(provider)
    return request


# --- policy pack project and config ---------------------------------------------------------------------


@dataclass(frozen=True)
class _PolicyProject:
    runtime: str
    options: Mapping[str, Any]
    version: str
    description: str


def _load_policy_project(pack_dir: Path) -> _PolicyProject:
    path = pack_dir / "PulumiPolicy.yaml"
    if not path.is_file():
        raise PolicyPackError(f"failed to load Pulumi policy project located at {str(pack_dir)!r}: no {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PolicyPackError(f"failed to load Pulumi policy project {path}: {exc}") from None
    runtime = data.get("runtime")
    options: Mapping[str, Any] = {}
    if isinstance(runtime, Mapping):
        options = runtime.get("options") or {}
        runtime = runtime.get("name")
    if runtime != "python":
        raise PolicyPackError(
            f"{path}: runtime {runtime!r} is not supported offline; only Python policy packs can be run here"
        )
    return _PolicyProject(
        runtime="python",
        options=options,
        version=str(data.get("version") or ""),
        description=str(data.get("description") or ""),
    )


def _parse_user_config(config: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """`LoadPolicyPackConfigFromFile`: {policy: level} or {policy: {"enforcementLevel"?: level, **props}}."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyConfigError(f"cannot read policy pack config {path}: {exc}") from None
        if not text.strip():
            return {}
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyConfigError(f"policy pack config {path} is not valid JSON: {exc}") from None
        if not isinstance(config, Mapping):
            raise PolicyConfigError(f"policy pack config {path} must be a JSON object")
    result: dict[str, dict[str, Any]] = {}
    for policy, value in config.items():
        if isinstance(value, str):
            entry: dict[str, Any] = {"enforcementLevel": _check_level(policy, value)}
        elif isinstance(value, Mapping):
            entry = {k: v for k, v in value.items() if k != "enforcementLevel"}
            if "enforcementLevel" in value:
                entry["enforcementLevel"] = _check_level(policy, value["enforcementLevel"])
        else:
            raise PolicyConfigError(f"parsing {policy!r}: {value!r} is not a valid value; must be a string or object")
        if entry:  # the engine drops empty entries
            result[policy] = entry
    return result


def _check_level(policy: str, level: Any) -> EnforcementLevel:
    if level not in ENFORCEMENT_LEVELS:
        raise PolicyConfigError(f"parsing enforcement level for {policy!r}: {level!r} is not a valid enforcement level")
    return cast(EnforcementLevel, level)


def _apply_config(result: dict[str, dict[str, Any]], given: Mapping[str, Mapping[str, Any]]) -> None:
    """`applyConfig` from pkg/resource/analyzer/config.go, including its handling of the "all" key."""
    all_level = given.get("all", {}).get("enforcementLevel")
    if all_level:
        for entry in result.values():
            entry["enforcementLevel"] = all_level
    for policy, given_entry in given.items():
        merged = dict(result.get(policy, {}))
        merged.update(given_entry)
        result[policy] = merged


def _reconcile_config(
    info: analyzer_pb2.AnalyzerInfo, policies: list[PolicyInfo], user: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for policy in policies:
        entry: dict[str, Any] = {"enforcementLevel": policy.enforcement_level}
        for key, schema in policy.config_schema.items():
            if isinstance(schema, Mapping) and "default" in schema:
                entry[key] = schema["default"]
        result[policy.name] = entry
    # An initial-config entry always carries a level on the wire (ADVISORY when the pack set none), and
    # the engine applies it like any other: we keep that behaviour rather than second-guess it.
    initial = {
        name: {**json_format.MessageToDict(cfg.properties), "enforcementLevel": _LEVEL_FROM_PROTO[cfg.enforcementLevel]}
        for name, cfg in info.initialConfig.items()
    }
    _apply_config(result, initial)
    _apply_config(result, user)
    return result


def _validate_config(
    pack: str, version: str, policies: list[PolicyInfo], config: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    errors: list[str] = []
    for policy in policies:
        if not policy.config_schema and not policy.required_config:
            continue
        schema: dict[str, Any] = {"type": "object", "properties": dict(policy.config_schema)}
        if policy.required_config:
            schema["required"] = list(policy.required_config)
        props = {k: v for k, v in config.get(policy.name, {}).items() if k != "enforcementLevel"}
        for error in sorted(jsonschema.Draft7Validator(schema).iter_errors(props), key=str):
            where = ".".join(str(p) for p in error.absolute_path)
            errors.append(
                f"validating policy config: {pack} {version}  {policy.name}: {where + ': ' if where else ''}"
                f"{error.message}"
            )
    return sorted(errors)


# --- the pack process ------------------------------------------------------------------------------------


class _PackProcess:
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


def _pack_command(pack_dir: Path, project: _PolicyProject) -> tuple[list[str], dict[str, str]]:
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


def _pack_environment(
    plan: Plan,
    *,
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
    env["PULUMI_PROJECT"] = plan.project
    env["PULUMI_STACK"] = plan.stack
    env["PULUMI_DRY_RUN"] = "true" if dry_run else "false"
    return env


@contextlib.contextmanager
def _started_pack(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> Iterator[tuple[_PackProcess, Any]]:
    process = _PackProcess(argv, cwd, env)
    channel = None
    try:
        port = process.wait_for_port(timeout)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise PolicyPackError(
                f"could not connect to the policy pack on port {port} within {timeout:g} s",
                stderr=process.stderr_text(),
                pid=process.pid,
            ) from None
        yield process, channel
    finally:
        if channel is not None:
            channel.close()
        process.stop()


# --- the run ---------------------------------------------------------------------------------------------


class _Analyzer:
    """Thin client that turns RPC failures into PolicyPackError with the pack's stderr."""

    def __init__(self, channel: Any, process: _PackProcess, timeout: float) -> None:
        self.stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        self.process = process
        self.timeout = timeout

    def call(self, method: str, request: Any, *, optional: bool = False) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if optional and code == grpc.StatusCode.UNIMPLEMENTED:
                return None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            self.process.settle(2.0 if code == grpc.StatusCode.UNAVAILABLE else 0.2)
            raise PolicyPackError(
                f"policy pack {method} failed: {code.name if code else 'error'}: {details}",
                stderr=self.process.stderr_text(),
                pid=self.process.pid,
            ) from None


def _policy_infos(info: analyzer_pb2.AnalyzerInfo) -> list[PolicyInfo]:
    policies = []
    for p in info.policies:
        schema = json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {}
        policies.append(
            PolicyInfo(
                name=p.name,
                description=p.description,
                enforcement_level=_LEVEL_FROM_PROTO[p.enforcementLevel],
                policy_type=_POLICY_TYPE_FROM_PROTO.get(p.policy_type, "unknown"),
                severity=_SEVERITY_FROM_PROTO.get(p.severity, ""),
                display_name=p.displayName,
                config_schema=schema,
                required_config=tuple(p.configSchema.required) if p.HasField("configSchema") else (),
                remediation=p.remediation_steps,
            )
        )
    return sorted(policies, key=lambda p: p.name)  # the engine sorts them by name too


def run_policy_pack(
    plan: Plan,
    pack_dir: Path = Path("policies"),
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    timeout: float = 60,
    *,
    stack_config: Mapping[str, str] | None = None,
    organization: str = "",
    stack_tags: Mapping[str, str] | None = None,
    dry_run: bool = True,
) -> PolicyReport:
    """Run the policy pack in `pack_dir` over `plan` and return what it reported.

    `config` is the policy pack config (`--policy-pack-config`): a dict or the path of a JSON file.
    `timeout` bounds the pack's start-up and each RPC, in seconds. The pack process is always stopped
    before this returns or raises. Raises PolicyPackError (or PolicyConfigError) with the pack's stderr.
    """
    pack_dir = Path(pack_dir)
    project = _load_policy_project(pack_dir)
    user_config = _parse_user_config(config)
    argv, env_changes = _pack_command(pack_dir, project)
    env = _pack_environment(
        plan, env_changes=env_changes, stack_config=stack_config, organization=organization, dry_run=dry_run
    )
    with _started_pack(argv, pack_dir.resolve(), env, timeout) as (process, channel):
        analyzer = _Analyzer(channel, process, timeout)
        report = _analyze(
            analyzer, plan, pack_dir, project, user_config, stack_config, organization, stack_tags, dry_run
        )
    report.pack_log = process.log_text()
    report.pack_pid = process.pid
    return report


def _analyze(
    analyzer: _Analyzer,
    plan: Plan,
    pack_dir: Path,
    project: _PolicyProject,
    user_config: Mapping[str, Mapping[str, Any]],
    stack_config: Mapping[str, str] | None,
    organization: str,
    stack_tags: Mapping[str, str] | None,
    dry_run: bool,
) -> PolicyReport:
    directory = str(pack_dir.resolve())
    analyzer.call(
        "Handshake",
        analyzer_pb2.AnalyzerHandshakeRequest(
            engine_address=OFFLINE_ENGINE_ADDRESS, root_directory=directory, program_directory=directory
        ),
        optional=True,
    )
    analyzer.call(
        "ConfigureStack",
        analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=plan.stack,
            project=plan.project,
            organization=organization,
            dry_run=dry_run,
            config=dict(stack_config or {}),
            tags=dict(stack_tags or {}),
        ),
        optional=True,
    )
    info = analyzer.call("GetAnalyzerInfo", empty_pb2.Empty())
    # The version from PulumiPolicy.yaml wins over the one the pack reports (Python packs say 0.0.1).
    version = project.version or info.version
    policies = _policy_infos(info)
    report = PolicyReport(pack_name=info.name, pack_version=version, pack_path=str(pack_dir))

    if info.supportsConfig:
        reconciled = _reconcile_config(info, policies, user_config)
        errors = _validate_config(info.name, version, policies, reconciled)
        if errors:
            raise PolicyConfigError("\n".join(errors), pid=analyzer.process.pid)
        if reconciled:
            request = analyzer_pb2.ConfigureAnalyzerRequest()
            for name, entry in reconciled.items():
                level = entry.get("enforcementLevel", "")
                if level not in _LEVEL_TO_PROTO:
                    raise PolicyConfigError(f"invalid enforcement level {level!r} for policy {name!r}")
                target = request.policyConfig[name]
                target.enforcementLevel = _LEVEL_TO_PROTO[level]
                target.properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
            analyzer.call("Configure", request)
        report.config = reconciled
        configured = {name: entry["enforcementLevel"] for name, entry in reconciled.items()}
        report.policies = [
            dataclasses.replace(p, enforcement_level=configured.get(p.name, p.enforcement_level)) for p in policies
        ]
    else:
        if user_config:
            raise PolicyConfigError(f"policy pack {info.name!r} at {str(pack_dir)!r} does not support config")
        report.policies = policies

    severities = {p.name: p.severity for p in policies}

    def violation(diag: Any, urn: str) -> PolicyViolation:
        level = _LEVEL_FROM_PROTO[diag.enforcementLevel]
        return PolicyViolation(
            policy_name=diag.policyName,
            policy_pack_name=diag.policyPackName,
            policy_pack_version=version,
            # A violation of a remediation policy that still fails is reported as mandatory.
            enforcement_level="mandatory" if level == "remediate" else level,
            urn=urn,
            message=diag.message,
            description=diag.description,
            severity=_SEVERITY_FROM_PROTO.get(diag.severity, "") or severities.get(diag.policyName, ""),
        )

    by_urn = plan.by_urn()
    for resource in plan.resources:
        # First pass: remediations transform the inputs that the analysis then sees.
        inputs: Mapping[str, Any] = resource.inputs
        remediated = analyzer.call(
            "Remediate", build_analyze_request(resource, by_urn, skip_internal_keys=False), optional=True
        )
        if remediated is not None:
            for item in remediated.remediations:
                if item.diagnostic:
                    report.violations.append(
                        PolicyViolation(
                            policy_name=item.policyName,
                            policy_pack_name=item.policyPackName,
                            policy_pack_version=version,
                            enforcement_level="advisory",
                            urn=resource.urn,
                            message=item.diagnostic,
                            description=item.description,
                            severity=severities.get(item.policyName, ""),
                        )
                    )
                elif item.HasField("properties"):
                    inputs = json_format.MessageToDict(item.properties)
                    report.remediations.append(
                        PolicyRemediation(item.policyName, item.policyPackName, version, resource.urn, item.description)
                    )
        response = analyzer.call("Analyze", build_analyze_request(resource, by_urn, properties=inputs))
        # The engine files every diagnostic of Analyze under the resource it analyzed.
        report.violations.extend(violation(d, resource.urn) for d in response.diagnostics)
        report.not_applicable.extend(
            PolicyNotApplicable(n.policy_name, resource.urn, n.reason) for n in response.not_applicable
        )

    response = analyzer.call("AnalyzeStack", build_analyze_stack_request(plan), optional=True)
    if response is not None:
        stack_urn = root_stack_urn(plan.project, plan.stack)
        for diag in response.diagnostics:
            report.violations.append(violation(diag, diag.urn if diag.urn in by_urn else stack_urn))
        report.not_applicable.extend(
            PolicyNotApplicable(n.policy_name, stack_urn, n.reason) for n in response.not_applicable
        )
    return report


# --- display ---------------------------------------------------------------------------------------------


def format_report(report: PolicyReport) -> str:
    """The "Policies:" section as `pulumi preview` prints it (ProgressDisplay.printPolicies), plus a count line."""
    lines = ["Policies:"]
    icon = "✅"
    for v in report.violations:
        if v.enforcement_level == "mandatory":
            icon = "❌"
            break
        icon = "⚠️"
    lines.append(f"    {icon} {report.pack_name}@v{report.pack_version} (local: {report.pack_path})")
    ordered = sorted(report.violations, key=lambda v: (v.enforcement_level, v.policy_name, v.urn))
    for v in ordered:
        lines.append(f"        - [{v.enforcement_level}]  {v.policy_name}  ({v.resource_type}: {v.resource_name})")
        for message_line in v.message.rstrip("\n").split("\n"):
            lines.append(f"          {message_line}")
    lines.append("")
    counts = report.counts()
    others = ", ".join(f"{n} {level}" for level, n in sorted(counts.items()) if level not in ("mandatory", "advisory"))
    summary = f"{counts['mandatory']} mandatory, {counts['advisory']} advisory"
    lines.append(f"Policy violations: {summary}{', ' + others if others else ''}")
    return "\n".join(lines) + "\n"


PolicyRunnerError = PolicyPackError
"""Alias: the error type `python -m offline` catches."""
