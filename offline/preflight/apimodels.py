"""AWS API models from botocore: request shapes with their required members, enums, lengths, ranges
and patterns. Only the nested structures whose CloudFormation form differs from Pulumi's are checked
here: ECS container definitions, ELB listener actions and rule conditions, EventBridge targets and
WAFv2 rules. Each service model is loaded once, on first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

API_DOC = {
    "ecs": "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html",
    "elbv2": "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_Action.html",
    "events": "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html",
    "wafv2": "https://docs.aws.amazon.com/waf/latest/APIReference/API_Rule.html",
}


@cache
def service_model(service: str) -> Any:
    """botocore's newest API version of `service`, read straight from its data folder (botocore's
    Loader scans every search path on first use, which costs more than reading the one file)."""
    import gzip
    import importlib.util
    import json
    from pathlib import Path

    import botocore.model

    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RuntimeError("botocore is not installed; run make setup")
    folder = Path(spec.origin).parent / "data" / service
    version = max(p.name for p in folder.iterdir() if p.is_dir())
    path = folder / version / "service-2.json.gz"
    data = (
        json.loads(gzip.decompress(path.read_bytes()))
        if path.exists()
        else json.loads(path.with_suffix("").read_text())
    )
    return botocore.model.ServiceModel(data, service_name=service)


def shape(service: str, name: str) -> Any:
    return service_model(service).shape_for(name)


def botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


@dataclass(frozen=True)
class ApiProblem:
    path: str
    keyword: str
    message: str
    certain: bool = True


def validate_shape(model_shape: Any, value: Any, path: str = "") -> Iterator[ApiProblem]:
    """Problems of `value` (already in the API's member names) against a botocore shape."""
    from offline.preflight.values import is_opaque

    if is_opaque(value):
        return
    kind = model_shape.type_name
    meta = model_shape.metadata
    if kind == "structure":
        if not isinstance(value, Mapping):
            yield ApiProblem(path, "type", f"is {type(value).__name__}; the API wants an object")
            return
        members = model_shape.members
        for required in model_shape.required_members:
            if required not in value:
                yield ApiProblem(path, "required", f"has no {required} (required by the API)")
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in members:
                yield ApiProblem(where, "unknown-member", f"is not a member of {model_shape.name}", certain=False)
                continue
            yield from validate_shape(members[key], item, where)
    elif kind == "list":
        if not isinstance(value, list | tuple):
            yield ApiProblem(path, "type", f"is {type(value).__name__}; the API wants a list")
            return
        if "min" in meta and len(value) < meta["min"]:
            yield ApiProblem(path, "min", f"has {len(value)} items; at least {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            yield ApiProblem(path, "max", f"has {len(value)} items; at most {meta['max']}")
        for i, item in enumerate(value):
            yield from validate_shape(model_shape.member, item, f"{path}[{i}]")
    elif kind == "map":
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from validate_shape(model_shape.value, item, f"{path}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            yield ApiProblem(path, "type", f"is {type(value).__name__}; the API wants a string")
            return
        if model_shape.enum and value not in model_shape.enum:
            yield ApiProblem(path, "enum", f"is not one of: {', '.join(model_shape.enum[:30])}")
        if "min" in meta and len(value) < meta["min"]:
            yield ApiProblem(path, "min", f"is {len(value)} characters; at least {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            yield ApiProblem(path, "max", f"is {len(value)} characters; at most {meta['max']}")
        pattern = meta.get("pattern")
        if pattern and _matches(pattern, value) is False:
            yield ApiProblem(path, "pattern", f"does not match {pattern}")
    elif kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield ApiProblem(path, "type", f"is {type(value).__name__}; the API wants a number")
            return
        if "min" in meta and value < meta["min"]:
            yield ApiProblem(path, "min", f"is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            yield ApiProblem(path, "max", f"is above the maximum {meta['max']}")
    elif kind == "boolean" and not isinstance(value, bool):
        yield ApiProblem(path, "type", f"is {type(value).__name__}; the API wants a boolean")


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _matches(pattern: str, value: str) -> bool | None:
    compiled = _pattern(pattern)
    return None if compiled is None else compiled.fullmatch(value) is not None or compiled.search(value) is not None


# --- Pulumi input shapes -> API member names -------------------------------------------------------
def translate(value: Any, renames: Mapping[str, str], drop: frozenset[str] = frozenset()) -> Any:
    """camelCase -> PascalCase keys, recursively, with `renames` where Pulumi's name differs more."""
    if isinstance(value, Mapping):
        return {
            renames.get(k, k[:1].upper() + k[1:]): translate(v, renames, drop)
            for k, v in value.items()
            if k not in drop
        }
    if isinstance(value, list | tuple):
        return [translate(v, renames, drop) for v in value]
    return value


ELB_ACTION_KEYS = {
    "fixedResponse": "FixedResponseConfig",
    "redirect": "RedirectConfig",
    "forward": "ForwardConfig",
    "authenticateOidc": "AuthenticateOidcConfig",
    "authenticateCognito": "AuthenticateCognitoConfig",
    "arn": "TargetGroupArn",
    "duration": "DurationSeconds",
}
ELB_CONDITION_KEYS = {
    "pathPattern": "PathPatternConfig",
    "hostHeader": "HostHeaderConfig",
    "httpHeader": "HttpHeaderConfig",
    "httpRequestMethod": "HttpRequestMethodConfig",
    "sourceIp": "SourceIpConfig",
}
EVENT_TARGET_KEYS = {
    "targetId": "Id",
    "sqsTarget": "SqsParameters",
    "ecsTarget": "EcsParameters",
    "httpTarget": "HttpParameters",
    "inputTransformer": "InputTransformer",
}
EVENT_TARGET_DROP = frozenset({"rule", "eventBusName", "forceDestroy"})
WAF_RULE_KEYS = {"cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled"}
