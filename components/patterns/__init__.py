"""The seed's data patterns, declared from the service specs (`model/spec.py`):

* `saga.py`: `Saga` (a Step Functions Standard workflow per `ServiceSpec.sagas` entry, owned by the
  orchestrating service) and `SagaParticipant` (each participant's own command queue and its
  SendTask* grant on exactly that state machine);
* `outbox.py`: `Outbox` (a service's event-store table stream -> EventBridge Pipe -> the bus);
* `readmodel.py`: `ReadModel` (a CQRS read model: bus rule -> own queue + DLQ -> projection Lambda
  -> a table the service owns).

Every component here is declared as a CHILD of the owning service's `FargateMicroservice`, so the
policy pack's ownership rules (`no-shared-databases`) see the new tables, roles and grants as the
owner's, exactly like the stores the service declares itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.context import PlatformContext


@dataclass(frozen=True)
class PatternContext:
    """The platform's `PlatformContext` (the one object of shared facts) plus the three settings every
    pattern component needs from the stack config; the facts are read through, never copied."""

    platform: PlatformContext
    log_retention_days: int
    tracing: bool
    alarm_topic_arn: pulumi.Input[str] | None = None

    @property
    def prefix(self) -> str:
        """Environment prefix of physical names (`ms-dev`)."""
        return self.platform.prefix

    @property
    def environment(self) -> str:
        return self.platform.environment

    @property
    def account_id(self) -> str:
        return self.platform.account_id

    @property
    def region(self) -> str:
        return self.platform.region

    @property
    def partition(self) -> str:
        return self.platform.partition

    @property
    def kms_key_arn(self) -> pulumi.Input[str]:
        return self.platform.key_arn

    @property
    def tags(self) -> Mapping[str, str]:
        return self.platform.tags

    def arn(self, service: str, resource: str) -> str:
        return self.platform.arn(service, resource)

    def queue_url(self, queue_name: str) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{queue_name}"
