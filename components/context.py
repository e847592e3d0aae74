"""PlatformContext: the facts every component of one environment shares, in one object.

Account, region, partition, environment, the base tags and the platform KMS key travel together in a
`PlatformContext` that `components/platform.py` builds once and passes to every component; a
component's own args keep only what is specific to it. The key is created by the first component
(`PlatformKey`, which needs everything else), so the context is built in two steps:

    base = PlatformContext(environment="dev", account_id=..., region=..., partition=..., tags=...)
    key = PlatformKey(base.prefix, PlatformKeyArgs(), base)
    context = base.with_key(key.key_arn)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pulumi

from components import iam


@dataclass(frozen=True)
class PlatformContext:
    environment: str
    """`dev`, `staging`, `prod`: the stack name and the `Environment` tag."""
    account_id: str
    region: str
    partition: str
    """`aws`, `aws-cn`, `aws-us-gov`: the first field of every ARN."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags every taggable resource carries (the stack config's `base_tags()`)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """The platform key (encryption at rest everywhere); set by `with_key` once `PlatformKey` exists."""

    @property
    def prefix(self) -> str:
        """`ms-<environment>`: the name every top-level component of the environment starts with."""
        return f"ms-{self.environment}"

    @property
    def key_arn(self) -> pulumi.Input[str]:
        """The platform key's ARN (a component that encrypts needs the context `with_key`)."""
        if self.kms_key_arn is None:
            raise ValueError("PlatformContext: no platform key yet; pass the context returned by with_key()")
        return self.kms_key_arn

    def with_key(self, kms_key_arn: pulumi.Input[str]) -> PlatformContext:
        return replace(self, kms_key_arn=kms_key_arn)

    def with_tags(self, **tags: str) -> dict[str, str]:
        """The base tags plus `tags` (e.g. `Service="order"`), as a new dict."""
        return {**self.tags, **tags}

    def trust_policy(self, service: str) -> str:
        """The trust policy of a role assumed by AWS service `service`, with this environment's account,
        region and partition in its source conditions (`components.iam.trust_policy`)."""
        return iam.trust_policy(service, account_id=self.account_id, region=self.region, partition=self.partition)

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        """`arn:<partition>:<service>:<region>:<account>:<resource>` (region empty for global services)."""
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"
