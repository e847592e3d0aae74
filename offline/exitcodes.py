"""The offline tools' exit codes, defined once. Import them; never write the numbers.

    0  OK        clean: the plan was built and no mandatory policy or preflight check failed
    1  POLICY    a mandatory policy violation or a failed preflight check (the input was readable)
    2  INPUT     an input or configuration error: a bad stack file, a bad service spec, bad usage;
                 one line on stderr, before any resource is declared
    3  INTERNAL  a bug in this program (an exception nobody anticipated); the message asks for a bug
                 report, and `--debug` shows the traceback

When several stacks or checks run in one command, the worst (highest) code wins: `worst(codes)`.
argparse exits with 2 on a usage error, which is the INPUT code too.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    OK = 0
    POLICY = 1
    INPUT = 2
    INTERNAL = 3


def worst(codes: Iterable[int]) -> ExitCode:
    """The exit code of several runs: the most severe one (INTERNAL > INPUT > POLICY > OK)."""
    return ExitCode(max((int(c) for c in codes), default=ExitCode.OK))


BUG_REPORT = (
    "internal error (a bug in the offline preview, not in your input): {what}; "
    "please report it with the command you ran and the output of the same command with --debug"
)
"""The one line printed for exit code 3 (`what` is the exception's type and message)."""
