"""ConfigError: one line naming the key, the value and what is allowed, before any resource exists."""

from __future__ import annotations

import pulumi


class ConfigError(pulumi.RunError):
    """A stack configuration or service spec problem. Pulumi prints RunError messages without a traceback."""
