"""Exceptions kept in the repository (`policies/exceptions.yaml`).

Each exception names the policy, the exact URN of the resource (the stack's URN for a stack-level
finding), a reason, an owner and an expiry date:

    exceptions:
      - policy: ecs-readonly-root-filesystem
        urn: urn:pulumi:dev::microservices::...$aws:ecs/taskDefinition:TaskDefinition::ms-dev-legacy-task
        reason: the legacy image writes to /var/cache; fixed by the 2027 rewrite
        owner: team-payments
        expires: 2027-03-31

While an exception is valid, the violations of that policy on that URN are not reported as such; each
one is reported by the advisory policy `policy-exceptions-applied` instead ("exception applied: ..."),
so every applied exception is printed. The mandatory policy `policy-exceptions` reports an exception
that is malformed, expired (its expiry day is over, in UTC) or unused (it matched no violation in this
run: the problem is gone or the URN is wrong). Both run last in the pack, after every other policy of
the same run (resource policies run in `Analyze`, before `AnalyzeStack`).

The file is `exceptions.yaml` beside the pack's `PulumiPolicy.yaml`, or the file named by the
environment variable `MICROSERVICES_POLICY_EXCEPTIONS`. While it lists no exception, both policies
are served disabled (see `in_use`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import Config, EnforcementLevel, Finding, Severity, StackResource, StackRule

ENV_FILE = "MICROSERVICES_POLICY_EXCEPTIONS"
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "exceptions.yaml"
FIELDS = ("policy", "urn", "reason", "owner", "expires")


@dataclass
class PolicyException:
    index: int
    policy: str
    urn: str
    reason: str
    owner: str
    expires: datetime.date | None
    problems: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"exception #{self.index + 1} ({self.policy} on {self.urn})"

    def expired(self, today: datetime.date) -> bool:
        return self.expires is not None and self.expires < today


@dataclass
class Applied:
    exception: PolicyException
    urn: str
    message: str


class _Registry:
    path: Path | None = None
    exceptions: list[PolicyException] = []  # noqa: RUF012 (one pack process, one run at a time)
    load_error: str | None = None
    applied: list[Applied] = []  # noqa: RUF012


def exceptions_file() -> Path:
    return Path(os.environ[ENV_FILE]) if os.environ.get(ENV_FILE) else DEFAULT_FILE


def parse(data: Any) -> tuple[list[PolicyException], str | None]:
    """The exceptions of a loaded YAML document, or why the document is unusable."""
    if data is None:
        return [], None
    if not isinstance(data, Mapping) or not isinstance(data.get("exceptions", []), list):
        return [], "the file must be a mapping with a list under 'exceptions'"
    result = []
    for index, raw in enumerate(data.get("exceptions") or []):
        entry = raw if isinstance(raw, Mapping) else {}
        problems = [f"'{key}' is missing" for key in FIELDS if not entry.get(key)]
        expires: datetime.date | None = None
        value = entry.get("expires")
        if isinstance(value, datetime.date):
            expires = value
        elif value:
            try:
                expires = datetime.date.fromisoformat(str(value))
            except ValueError:
                problems.append(f"'expires' is {value!r}, not a date (YYYY-MM-DD)")
        result.append(
            PolicyException(
                index=index,
                policy=str(entry.get("policy") or ""),
                urn=str(entry.get("urn") or ""),
                reason=str(entry.get("reason") or ""),
                owner=str(entry.get("owner") or ""),
                expires=expires,
                problems=problems,
            )
        )
    return result, None


def _load() -> None:
    path = exceptions_file()
    if _Registry.path == path:
        return
    _Registry.path, _Registry.exceptions, _Registry.load_error, _Registry.applied = path, [], None, []
    if not path.exists():
        return
    import yaml  # PyYAML: a dependency of the pulumi SDK the pack already needs

    try:
        _Registry.exceptions, _Registry.load_error = parse(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as error:
        _Registry.load_error = f"is not valid YAML ({error})"


def in_use() -> bool:
    """Is there anything for the exception policies to do: entries, or a file that cannot be read? When
    not, the pack serves them disabled: pulumi_policy deserializes every resource once per enabled stack
    policy (about 1 s per policy at 8,000 resources), and an empty list has nothing to apply or report."""
    _load()
    return bool(_Registry.exceptions or _Registry.load_error)


def today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def excepted(policy: str, urn: str, message: str) -> bool:
    """Is this violation covered by a valid exception? (Records it as applied if so.)"""
    _load()
    for exception in _Registry.exceptions:
        if exception.problems or exception.expired(today()):
            continue
        if exception.policy == policy and exception.urn == urn:
            _Registry.applied.append(Applied(exception, urn, message))
            return True
    return False


def check_applied(_resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    _load()
    for applied in _Registry.applied:
        e = applied.exception
        yield Finding(
            f"exception applied: {e.policy} on {applied.urn} (reason: {e.reason}; owner: {e.owner}; expires: "
            f"{e.expires}): {applied.message}",
            applied.urn,
        )


def check_exceptions(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    _load()
    stack_urns = {r.urn for r in resources}
    if _Registry.load_error:
        yield Finding(f"policy exceptions file {_Registry.path}: {_Registry.load_error}.")
    used = {id(a.exception) for a in _Registry.applied}
    now = today()
    for e in _Registry.exceptions:
        where = e.urn if e.urn in stack_urns else None
        if e.problems:
            yield Finding(f"{e.label()} in {_Registry.path} is malformed: {'; '.join(e.problems)}.", where)
        elif e.expired(now):
            yield Finding(
                f"{e.label()} (owner {e.owner}) expired on {e.expires}: fix the violation or renew the exception "
                "with a new reason and date.",
                where,
            )
        elif id(e) not in used:
            yield Finding(
                f"{e.label()} (owner {e.owner}) is unused: no violation of {e.policy} on that URN in this run; remove "
                "it (or correct the URN).",
                where,
            )
    _Registry.applied = []  # the next run (e.g. `pulumi up` after its preview) starts afresh


POLICY_EXCEPTIONS_APPLIED = StackRule(
    name="policy-exceptions-applied",
    description="Prints every policy exception from exceptions.yaml that was applied in this run.",
    severity=Severity.LOW,
    enforcement=EnforcementLevel.ADVISORY,
    remediation="Nothing to do while the exception is valid; fix the underlying violation before it expires.",
    check=check_applied,
)

POLICY_EXCEPTIONS = StackRule(
    name="policy-exceptions",
    description=(
        "Every exception in exceptions.yaml names a policy, an exact URN, a reason, an owner and an expiry, has "
        "not expired and was used in this run."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Fix the entry, renew it with a new reason and date, or remove it when the violation is gone.",
    check=check_exceptions,
)

RULES = [POLICY_EXCEPTIONS_APPLIED, POLICY_EXCEPTIONS]
