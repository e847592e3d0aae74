"""Limits AWS documents for values the program writes, shared by config validation, the components and
the offline preflight (`offline/preflight/`), so that one rule has one implementation.

Each constant cites where it comes from. Values that go stale (engine versions) live in
`model/data/*.json` with the date they were retrieved and how to refresh them (README,
"AWS conformance preflight").
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"

# --- EC2 security group and rule descriptions -----------------------------------------------------
# EC2 API Reference, CreateSecurityGroup `GroupDescription` and IpRange/UserIdGroupPair `Description`
# (botocore model ec2 CreateSecurityGroupRequest.Description, IpRange.Description): "Up to 255
# characters in length. Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*".
EC2_DESCRIPTION_SOURCE = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html"
EC2_DESCRIPTION_MAX = 255
EC2_DESCRIPTION_CHARS = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*")


def ec2_description_problem(text: str) -> str | None:
    """Why EC2 would reject `text` as a security group (rule) description, or None."""
    if len(text) > EC2_DESCRIPTION_MAX:
        return f"is {len(text)} characters; EC2 allows at most {EC2_DESCRIPTION_MAX}"
    bad = sorted({c for c in text if not EC2_DESCRIPTION_CHARS.fullmatch(c)})
    if bad:
        return (
            f"contains {', '.join(repr(c) for c in bad)}; EC2 allows only a-z, A-Z, 0-9, spaces and "
            "._-:/()#,@[]+=&;{}!$*"
        )
    return None


def ec2_description(text: str) -> str:
    """`text` unchanged if EC2 accepts it as a security group (rule) description; ValueError otherwise.

    Every description the components build from names goes through here, so a character EC2 rejects
    fails the program (with the text) instead of the `pulumi up` API call."""
    problem = ec2_description_problem(text)
    if problem:
        raise ValueError(f"security group description {text!r} {problem} ({EC2_DESCRIPTION_SOURCE})")
    return text


# --- RDS PostgreSQL engine versions ---------------------------------------------------------------
@cache
def rds_postgres_versions() -> dict[str, Any]:
    """The shipped list of PostgreSQL versions RDS lets you create (with `retrieved` and `sources`)."""
    data: dict[str, Any] = json.loads((DATA_DIR / "rds-postgres-versions.json").read_text())
    return data


def postgres_version_problem(version: str) -> str | None:
    """Why RDS would not create a PostgreSQL instance of `version`, or None."""
    data = rds_postgres_versions()
    creatable: list[str] = data["creatable"]
    if version in creatable:
        return None
    why = "is deprecated (no new instances)" if version in data["deprecated"] else "is not a creatable version"
    return (
        f"{why}; RDS PostgreSQL versions creatable as of {data['retrieved']}: {', '.join(creatable)} "
        "(list: model/data/rds-postgres-versions.json)"
    )


# --- Fargate capacity and CPU architecture --------------------------------------------------------
# ECS Developer Guide, "AWS Fargate capacity providers": Fargate Spot is not supported for ARM64
# (Linux) tasks. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html
FARGATE_SPOT_ARM64_SOURCE = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html"
)
