"""The seed's data patterns, declared from the service specs (`services/spec.py`):

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
from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class PatternContext:
    """Facts every pattern component needs (one object instead of repeating them in every args)."""

    prefix: str
    """Environment prefix of physical names (`ms-dev`)."""
    environment: str
    account_id: str
    region: str
    partition: str
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    tracing: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    alarm_topic_arn: pulumi.Input[str] | None = None

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{resource}"

    def queue_url(self, queue_name: str) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{queue_name}"
