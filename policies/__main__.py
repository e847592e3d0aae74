"""The microservices-guardrails CrossGuard policy pack (`pulumi preview --policy-pack policies`).

The engine runs this file with the pack directory first on sys.path (`python -m pulumi.policy <engine> .`
does `runpy.run_path(".")`), so the rule package imports as `guardrails`. Importing this module under
another name (the tests do) assembles the rules without starting the analyzer server.
"""

import dataclasses

from guardrails import (
    baseline,
    containers,
    core,
    data_stores,
    deployments,
    edge,
    exceptions,
    identity,
    mesh,
    messaging,
    network,
    observability,
    ownership,
    serverless,
)
from pulumi_policy import EnforcementLevel, PolicyPack

RULES = [
    *ownership.RULES,
    *mesh.RULES,
    *data_stores.RULES,
    *messaging.RULES,
    *containers.RULES,
    *edge.RULES,
    *network.RULES,
    *identity.RULES,
    *serverless.RULES,
    *observability.RULES,
    *baseline.RULES,
    *deployments.RULES,
    *exceptions.RULES,  # last: they report on every other policy of the run
]


def served(rule: core.Rule) -> core.Rule:
    """The rule as the pack serves it: the exception policies are disabled while there are no exceptions."""
    if rule in exceptions.RULES and not exceptions.in_use():
        return dataclasses.replace(rule, enforcement=EnforcementLevel.DISABLED)
    return rule


if __name__ == "__main__":
    PolicyPack(
        name="microservices-guardrails",
        description=(
            "Guardrails of the microservices platform on AWS: database per service, mTLS between services, "
            "no App Mesh, and a security baseline drawn from @pulumi/awsguard and cdk-nag AwsSolutions."
        ),
        policies=[served(rule).policy() for rule in RULES],
        enforcement_level=EnforcementLevel.MANDATORY,
        provider="aws",
        tags=["aws", "security", "microservices"],
    )
