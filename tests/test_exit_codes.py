"""The offline CLI's exit codes (offline/exitcodes.py): 0 clean, 1 mandatory policy violation, 2 input or
config error (one line, no traceback), 3 internal error (a bug-report line; the traceback only with --debug).

Exit 0 and 1 on the real stacks are asserted in test_offline_preview.py and test_policy_variants.py;
here each code is produced by the smallest program that causes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from offline.exitcodes import BUG_REPORT, ExitCode, worst
from tests.conftest import ROOT

TINY_PACK = ROOT / "tests" / "fixtures" / "policy_packs" / "tiny"


def project(tmp_path: Path, program: str, stack_file: str = "config:\n  aws:region: us-east-1\n") -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: tiny\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)
    (tmp_path / "__main__.py").write_text(program)
    return tmp_path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offline", *args], capture_output=True, text=True, cwd=ROOT, timeout=180
    )


def preview(directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("preview", "--stack", "dev", "--project-dir", str(directory), *extra)


BUCKET = "import pulumi_aws as aws\naws.s3.Bucket('b', acl={acl!r})\n"


def test_the_codes_are_the_documented_numbers() -> None:
    assert [(c.name, int(c)) for c in ExitCode] == [("OK", 0), ("POLICY", 1), ("INPUT", 2), ("INTERNAL", 3)]
    readme = (ROOT / "README.md").read_text()
    for code, meaning in [(0, "clean"), (1, "mandatory policy"), (2, "input"), (3, "internal error")]:
        assert f"| {code} | {meaning}" in readme, f"README's exit code table lacks {code} ({meaning})"


def test_worst_code_wins() -> None:
    assert worst([]) is ExitCode.OK
    assert worst([0, 1, 0]) is ExitCode.POLICY
    assert worst([ExitCode.POLICY, ExitCode.INPUT]) is ExitCode.INPUT
    assert worst([2, 3, 1]) is ExitCode.INTERNAL


def test_clean_program_exits_0(tmp_path: Path) -> None:
    result = preview(project(tmp_path, BUCKET.format(acl="private")), "--policy-pack", str(TINY_PACK))
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr


def test_mandatory_violation_exits_1(tmp_path: Path) -> None:
    result = preview(project(tmp_path, BUCKET.format(acl="public-read")), "--policy-pack", str(TINY_PACK))
    assert result.returncode == ExitCode.POLICY, result.stdout + result.stderr
    assert "acl 'public-read'" in result.stdout


def test_input_error_exits_2_with_one_line(tmp_path: Path) -> None:
    result = cli("preview", "--stack", "nosuchstack", "--project-dir", str(project(tmp_path, "")))
    assert result.returncode == ExitCode.INPUT
    assert result.stderr.splitlines() == [
        "error: unknown stack 'nosuchstack': no Pulumi.nosuchstack.yaml; stacks here: dev"
    ]


def test_usage_error_exits_2() -> None:
    assert cli("preview").returncode == ExitCode.INPUT


@pytest.mark.parametrize(
    ("program", "what"),
    [
        ("raise KeyError('boom')\n", "KeyError: 'boom'"),
        # An exception inside an apply() callback surfaces the same way.
        ("import pulumi_aws as aws\naws.s3.Bucket('b').arn.apply(lambda a: 1 / 0)\n", "ZeroDivisionError"),
    ],
)
def test_internal_error_exits_3_with_a_bug_report_line_and_no_traceback(
    tmp_path: Path, program: str, what: str
) -> None:
    result = preview(project(tmp_path, program), "--no-policy")
    assert result.returncode == ExitCode.INTERNAL, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: internal error (a bug in the offline preview, not in your input): " + what)
    assert lines[0].endswith(BUG_REPORT.split("{what}")[1])
    assert "Traceback" not in result.stdout + result.stderr


def test_debug_shows_the_traceback_of_an_internal_error(tmp_path: Path) -> None:
    result = preview(project(tmp_path, "raise KeyError('boom')\n"), "--no-policy", "--debug")
    assert result.returncode == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in result.stderr
    assert "in <module>\n    raise KeyError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: internal error")
