"""The reference images in the deploy path: specs, Dockerfiles, ECR repositories, built images and the
container definitions that run them, read side by side so they cannot drift apart."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import pytest

from components.images import lifecycle_policy, source_tag
from components.microservice import APP_CONTAINER, APP_HEALTH_CHECK_TIMING
from model.spec import ServiceSpec
from offline.plan import Plan, PlannedResource
from offline.runtime import run_program
from services import load_catalog
from tests.conftest import STACKS, children_of, preview, single

ROOT = Path(__file__).resolve().parent.parent
BUILT = [s for s in load_catalog() if s.kind == "fargate" and s.build is not None]
FARGATE = [s for s in load_catalog() if s.kind == "fargate"]
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
IMAGE = "docker-build:index:Image"
REPOSITORY = "aws:ecr/repository:Repository"


def final_stage(spec: ServiceSpec) -> list[Any]:
    assert spec.build is not None
    commands = dockerfile.parse_file(str(ROOT / spec.build.dockerfile))
    last_from = max(i for i, c in enumerate(commands) if c.cmd == "FROM")
    return list(commands[last_from:])


def instruction(commands: list[Any], name: str) -> Any:
    found = [c for c in commands if c.cmd == name]
    assert len(found) == 1, f"expected one {name} in the final stage, got {len(found)}"
    return found[0]


def app_container(plan: Plan, env: str, name: str) -> dict[str, Any]:
    component = single((r for r in plan.resources if r.urn.endswith(f"FargateMicroservice::ms-{env}-{name}")), name)
    task = single((r for r in children_of(plan, component.urn) if r.type == TASK_DEF), "task definition")
    return next(c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == APP_CONTAINER)


def built_image(plan: Plan, env: str, name: str) -> tuple[PlannedResource, PlannedResource]:
    component = single((r for r in plan.resources if r.urn.endswith(f"ServiceImage::ms-{env}-{name}")), name)
    children = children_of(plan, component.urn)
    return single((r for r in children if r.type == IMAGE), "image"), single(
        (r for r in children if r.type == REPOSITORY), "repository"
    )


def test_every_reference_service_is_built_here() -> None:
    assert {s.name for s in BUILT} == {"user", "order", "payment", "inventory"}


@pytest.mark.parametrize("spec", BUILT, ids=lambda s: s.name)
def test_container_definition_matches_the_dockerfile(spec: ServiceSpec) -> None:
    """User, port, health check (command and timing) and entry point: the task definition ECS runs
    and the Dockerfile the image is built from say the same thing."""
    stage = final_stage(spec)
    app = app_container(preview("dev").plan, "dev", spec.name)
    assert instruction(stage, "USER").value == (app["user"],) == (spec.run_as_user,)
    assert instruction(stage, "EXPOSE").value == (str(app["portMappings"][0]["containerPort"]),)
    env = dict(zip(instruction(stage, "ENV").value[::2], instruction(stage, "ENV").value[1::2], strict=True))
    assert env["PORT"] == str(spec.container_port) == {e["name"]: e["value"] for e in app["environment"]}["PORT"]
    health = instruction(stage, "HEALTHCHECK")
    assert health.json, "HEALTHCHECK must use the exec (JSON) form, like the ECS command"
    assert list(health.value) == app["healthCheck"]["command"], "Dockerfile HEALTHCHECK != container health check"
    assert app["healthCheck"]["command"][-1] == f"http://127.0.0.1:{spec.container_port}{spec.health_check_path}"
    flags = dict(f.lstrip("-").split("=", 1) for f in health.flags)
    assert flags == {
        "interval": f"{app['healthCheck']['interval']}s",
        "timeout": f"{app['healthCheck']['timeout']}s",
        "start-period": f"{app['healthCheck']['startPeriod']}s",
        "retries": str(app["healthCheck"]["retries"]),
    }
    assert {k: app["healthCheck"][k] for k in APP_HEALTH_CHECK_TIMING} == APP_HEALTH_CHECK_TIMING
    entry = instruction(stage, "ENTRYPOINT")
    assert entry.json and list(entry.value) == ["python", "-m", "apps.runtime.serve", f"apps.{spec.name}.app:app"]
    assert (ROOT / "apps" / spec.name / "app.py").is_file()
    assert app["readonlyRootFilesystem"] is True
    assert instruction(stage, "ENV").value[instruction(stage, "ENV").value.index("PYTHONDONTWRITEBYTECODE") + 1] == "1"


@pytest.mark.parametrize("spec", BUILT, ids=lambda s: s.name)
def test_the_image_tag_hashes_exactly_what_the_dockerfile_copies(spec: ServiceSpec) -> None:
    assert spec.build is not None
    copied = []
    for command in dockerfile.parse_file(str(ROOT / spec.build.dockerfile)):
        if command.cmd == "COPY" and not any(f.startswith("--from") for f in command.flags):
            copied += [v.rstrip("/") for v in command.value[:-1]]
    assert sorted(copied) == sorted(spec.build.sources)


def test_source_tag_changes_with_the_sources_only(tmp_path: Path) -> None:
    spec = next(s for s in BUILT if s.name == "user")
    assert spec.build is not None
    shutil.copytree(ROOT / "apps", tmp_path / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    before = source_tag(spec.build, tmp_path)
    assert re.fullmatch(r"src-[0-9a-f]{12}", before)
    assert source_tag(spec.build, ROOT) == before  # relative paths and content only: machine-independent
    (tmp_path / "apps" / "order" / "app.py").write_text("# another service changed\n")
    assert source_tag(spec.build, tmp_path) == before
    (tmp_path / "apps" / "runtime" / "client.py").write_text("# the template changed\n")
    assert source_tag(spec.build, tmp_path) != before


@pytest.mark.parametrize("stack", STACKS)
def test_every_fargate_service_defaults_to_its_reference_image(stack: str) -> None:
    plan = preview(stack).plan
    for spec in FARGATE:
        assert spec.build is not None, f"{spec.name} has no reference image"
        image, repository = built_image(plan, stack, spec.name)
        app = app_container(plan, stack, spec.name)
        tag = source_tag(spec.build)
        url = repository.outputs["repositoryUrl"]
        assert image.inputs["tags"] == [f"{url}:{tag}"]
        assert app["image"] == image.outputs["ref"] == f"{url}:{tag}@{image.outputs['digest']}", spec.name
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.outputs["digest"])
        assert image.inputs["push"] is True and image.inputs["buildOnPreview"] is False
        # Built for the CPU its task definition runs on (compute.cpuArchitecture: x86 Spot, prod Graviton).
        component = single(
            (r for r in plan.resources if r.urn.endswith(f"FargateMicroservice::ms-{stack}-{spec.name}")), spec.name
        )
        task = single((r for r in children_of(plan, component.urn) if r.type == TASK_DEF), "task definition")
        cpu = task.inputs["runtimePlatform"]["cpuArchitecture"]
        assert image.inputs["platforms"] == [{"ARM64": "linux/arm64", "X86_64": "linux/amd64"}[cpu]], spec.name
        assert image.inputs["context"] == {"location": "apps"}
        assert image.inputs["dockerfile"] == {"location": spec.build.dockerfile}
        [registry] = image.inputs["registries"]
        assert registry["address"] == url and registry["username"] == "AWS"


@pytest.mark.parametrize("stack", STACKS)
def test_repositories_are_immutable_scanned_encrypted_and_pullable_by_their_service_only(stack: str) -> None:
    plan = preview(stack).plan
    for spec in FARGATE:
        _, repository = built_image(plan, stack, spec.name)
        inputs = repository.inputs
        assert inputs["name"] == f"microservices/{stack}/{spec.name}"
        assert inputs["imageTagMutability"] == "IMMUTABLE"
        assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        [encryption] = inputs["encryptionConfigurations"]
        assert encryption["encryptionType"] == "KMS" and encryption["kmsKey"].startswith("arn:aws:kms:")
        assert inputs["forceDelete"] is (stack != "prod")
        policy = single(
            (r for r in children_of(plan, repository.parent or "") if r.type.endswith("LifecyclePolicy")), "lifecycle"
        )
        assert json.loads(policy.inputs["policy"]) == json.loads(lifecycle_policy())
        # The execution role of that service (and no other) may pull from it.
        pullers = []
        for role_policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            document = json.loads(role_policy.inputs["policy"])
            for statement in document["Statement"]:
                if "ecr:BatchGetImage" in statement["Action"] and repository.outputs["arn"] in statement["Resource"]:
                    pullers.append(role_policy.name)
        assert pullers == [f"ms-{stack}-{spec.name}-execution"], pullers


def test_a_placeholder_image_by_config_skips_the_build() -> None:
    placeholder = "public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine"
    overrides = {"microservices:services": json.dumps({"payment": {"image": placeholder}, "order": {"maxCount": 2}})}
    plan = run_program(ROOT, "dev", config_overrides=overrides).plan
    assert app_container(plan, "dev", "payment")["image"] == placeholder
    assert not [r for r in plan.resources if r.urn.endswith("ServiceImage::ms-dev-payment")]
    assert [r for r in plan.resources if r.urn.endswith("ServiceImage::ms-dev-order")]


def test_image_requirements_match_the_apps_extra() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = sorted(pyproject["project"]["optional-dependencies"]["apps"])
    lines = (ROOT / "apps" / "requirements.txt").read_text().splitlines()
    pinned = sorted(line for line in lines if line and not line.startswith("#"))
    assert pinned == extra
    assert all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][0-9A-Za-z.]*", p) for p in pinned)


def test_dockerfiles_pass_hadolint() -> None:
    binary = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    files = [str(ROOT / s.build.dockerfile) for s in BUILT if s.build is not None]
    result = subprocess.run([binary, "--no-color", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("spec", BUILT, ids=lambda s: s.name)
def test_the_image_layout_runs_without_the_repository(spec: ServiceSpec, tmp_path: Path) -> None:
    """Lay out /srv as the service's Dockerfile COPY lines do (and nothing else from the repository),
    then import its app and entry point and run the HEALTHCHECK's probe from there: a file the image
    forgets to copy fails here, without Docker."""
    import sys

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from tests.apps.servers import LoopbackServer

    assert spec.build is not None
    srv = tmp_path / "srv"
    commands = final_stage(spec)
    assert instruction(commands, "WORKDIR").value == ("/srv",)
    for command in commands:
        if command.cmd != "COPY" or any(f.startswith("--from") for f in command.flags):
            continue
        *sources, target = command.value
        for source in sources:
            origin = ROOT / spec.build.context / source
            if origin.is_dir():
                shutil.copytree(origin, srv / target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                (srv / target).mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, srv / target / origin.name)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(srv), "PYTHONDONTWRITEBYTECODE": "1"}
    script = f"import apps.{spec.name}.app, apps.probe, apps.runtime.serve"
    imported = subprocess.run([sys.executable, "-c", script], cwd=srv, env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    command = list(next(c for c in commands if c.cmd == "HEALTHCHECK").value)[1:]
    assert command[:3] == ["python", "-m", "apps.probe"]
    app = Starlette(routes=[Route("/health", lambda request: PlainTextResponse("ok"))])
    with LoopbackServer(app) as server:
        url = command[3].replace(f"http://127.0.0.1:{spec.container_port}", server.url)
        probe = subprocess.run([sys.executable, *command[1:3], url], cwd=srv, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
