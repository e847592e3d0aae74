"""How the preflight reads recorded input values: secrets and unknowns are not checked."""

from __future__ import annotations

from typing import Any

from offline.plan import UNKNOWN

SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""The Pulumi wire signature key that marks a secret (or asset/archive) object."""


def is_opaque(value: Any) -> bool:
    """True for values the preflight must not judge: unknown during preview, secrets, assets."""
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return SECRET_SIG in value
    if isinstance(value, str):
        return UNKNOWN in value
    return False


def contains_unknown(value: Any) -> bool:
    if is_opaque(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def get_path(inputs: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted Pulumi input path (`healthCheck.interval`)."""
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value
