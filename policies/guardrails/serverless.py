"""Lambda functions: X-Ray tracing and a destination for failed asynchronous invocations."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .core import (
    Config,
    EnforcementLevel,
    Finding,
    Resource,
    ResourceRule,
    Severity,
    StackResource,
    StackRule,
    each,
    known,
    mapping,
    of_types,
    property_deps,
)

FUNCTION = "aws:lambda/function:Function"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
EVENT_SOURCE_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"


def check_tracing(resource: Resource, _config: Config) -> Iterator[str]:
    mode = mapping(resource.props.get("tracingConfig")).get("mode")
    if mode != "Active":
        yield (
            f"Lambda function '{resource.name}' does not trace with X-Ray "
            f"(tracingConfig.mode is {mode or 'unset'}, must be Active)."
        )


LAMBDA_TRACING_ACTIVE = ResourceRule(
    name="lambda-tracing-active",
    description="Lambda functions trace requests with AWS X-Ray (active tracing).",
    severity=Severity.LOW,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set tracingConfig: {mode: 'Active'} and allow xray:PutTraceSegments / xray:PutTelemetryRecords.",
    applies=of_types(FUNCTION),
    check=check_tracing,
)


def _refers_to(link: StackResource, function: StackResource) -> bool:
    """Does `link.functionName` name `function` (by dependency, or by the same literal name/ARN)?"""
    if any(d.urn == function.urn for d in property_deps(link, "functionName")):
        return True
    value = known(link.props, "functionName")
    names = {known(function.props, "name"), known(function.props, "arn")}
    return isinstance(value, str) and value in names


def check_failure_destination(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    configs = [r for r in resources if r.resource_type == INVOKE_CONFIG]
    mappings = [r for r in resources if r.resource_type == EVENT_SOURCE_MAPPING]

    def check(function: StackResource) -> Iterator[Finding]:
        if mapping(function.props.get("deadLetterConfig")).get("targetArn"):
            return
        for config in (c for c in configs if _refers_to(c, function)):
            on_failure = mapping(mapping(config.props.get("destinationConfig")).get("onFailure"))
            if on_failure.get("destination"):
                return
        if any(_refers_to(m, function) for m in mappings):
            return  # polled from a queue or stream: failed records go to the source's redrive / DLQ
        yield Finding(
            f"Lambda function '{function.name}' loses failed asynchronous events: give it a deadLetterConfig or an "
            f"{INVOKE_CONFIG} with destinationConfig.onFailure.",
            function.urn,
        )

    yield from each((r for r in resources if r.resource_type == FUNCTION), check)


LAMBDA_FAILURE_DESTINATION = StackRule(
    name="lambda-failure-destination",
    description=(
        "Lambda functions invoked asynchronously keep failed events (dead-letter queue or on-failure destination); "
        "functions fed by an event source mapping rely on their source's dead-letter queue."
    ),
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Declare an aws.lambda_.FunctionEventInvokeConfig with destinationConfig.onFailure.destination = an SQS "
        "dead-letter queue (or set deadLetterConfig.targetArn on the function)."
    ),
    check=check_failure_destination,
)

RULES = [LAMBDA_TRACING_ACTIVE, LAMBDA_FAILURE_DESTINATION]
