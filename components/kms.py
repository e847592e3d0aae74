"""The environment's customer-managed KMS key: encrypts logs, queues, topics, secrets and data stores.

One key per environment keeps the key policy reviewable in one place. AWS services that write
encrypted data on our behalf (CloudWatch Logs, EventBridge, SNS, and CloudWatch alarms publishing to
the encrypted alarm topic) are allowed to use it only from this account (`aws:SourceAccount`), and
CloudWatch Logs only for this account's log groups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext


@dataclass(frozen=True)
class PlatformKeyArgs:
    deletion_window_in_days: int = 30
    """How long a scheduled key deletion can still be cancelled (AWS: 7 to 30 days)."""


def key_policy(account_id: str, region: str, partition: str) -> str:
    """Key policy: account administrators manage it; named AWS services may use it for this account."""
    root = f"arn:{partition}:iam::{account_id}:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministration",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsForThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                        }
                    },
                },
                {
                    "Sid": "MessagingServicesForThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "sns.amazonaws.com", "sqs.amazonaws.com"]},
                    # EventBridge needs DescribeKey for an encrypted bus and ReEncrypt* for its archive.
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:ReEncrypt*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
                {
                    # CloudWatch alarms publish to the KMS-encrypted alarm topic (components/observability.py)
                    # as the cloudwatch.amazonaws.com principal: without these two actions on the topic's
                    # key, every alarm notification is dropped ("CloudWatch Alarms does not have
                    # authorization to access the SNS topic encryption key").
                    "Sid": "CloudWatchAlarmsForThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


class PlatformKey(pulumi.ComponentResource):
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: PlatformKeyArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        """The key every other component encrypts with; `context` needs no key yet (this creates it)."""
        super().__init__("microservices:kms:PlatformKey", name, None, opts)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: encryption at rest for the microservices platform",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_in_days,
            policy=key_policy(context.account_id, context.region, context.partition),
            tags=dict(context.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            f"{name}-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=pulumi.ResourceOptions(parent=self)
        )
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"keyArn": self.key_arn, "keyId": self.key_id})
