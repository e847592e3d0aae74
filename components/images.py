"""ServiceImage: a service's own ECR repository and its reference image, built and pushed by `pulumi up`.

For a spec with `build` (the reference services in `apps/`) and no stack `image` override:

* an ECR repository `microservices/<env>/<service>`: tags IMMUTABLE (a tag names one image forever,
  so a task definition always runs what was reviewed), scan on push, KMS encryption with the
  platform key, and a lifecycle policy (untagged images expire after a day, the newest 30 tagged
  images are kept). Outside prod `force_delete` lets `pulumi destroy` remove a repository with images;
  in prod the repository is kept like the other stateful resources (`protect` with `protectResources`).
* the image, built with Docker BuildKit by the `docker-build` provider (pulumi-docker-build) from the
  service's Dockerfile for the tasks' CPU architecture (`compute.cpuArchitecture`: `linux/amd64`
  or `linux/arm64` for Graviton) and pushed with a
  short-lived ECR token (`aws.ecr.get_authorization_token`). Its tag is a hash of exactly the files the
  Dockerfile copies (`ImageBuild.sources`), so an unchanged service keeps its tag, its task definition
  and its running tasks; a changed one gets a new tag (an immutable tag is never pushed twice).
  The task definition pins the pushed digest (`<repository>:<tag>@sha256:...`).

Offline preview: nothing is built and no Docker daemon is needed. The mock runtime records the
`docker-build:index:Image` registration with all its inputs (context, Dockerfile, platform, tag,
registry) and answers a digest derived from them, so the plan shows which image each task would run
(see offline/mocks.py). A real `pulumi preview` does not build either (`build_on_preview=False`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from model.spec import ImageBuild

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEEP_TAGGED_IMAGES = 30
PLATFORMS = {"ARM64": "linux/arm64", "X86_64": "linux/amd64"}


def source_tag(build: ImageBuild, root: Path = PROJECT_ROOT) -> str:
    """`src-<12 hex>`: SHA-256 over the Dockerfile and every file under `build.sources` (sorted paths,
    bytecode caches skipped). Deterministic across machines: paths are relative, content only."""
    digest = hashlib.sha256()
    context = root / build.context
    files = [root / build.dockerfile]
    for source in build.sources:
        path = context / source
        if not path.exists():
            raise FileNotFoundError(f"image source {build.context}/{source} does not exist")
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for path in files:
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"src-{digest.hexdigest()[:12]}"


def lifecycle_policy() -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Untagged images (replaced layers of interrupted pushes) expire after a day",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 1,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the newest {KEEP_TAGGED_IMAGES} source-tagged images (rollbacks)",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPrefixList": ["src-"],
                        "countType": "imageCountMoreThan",
                        "countNumber": KEEP_TAGGED_IMAGES,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


@dataclass(frozen=True)
class ServiceImageArgs:
    """What one service's image needs; environment, tags and the key (which encrypts the repository)
    come from the `PlatformContext` given after the args."""

    service: str
    build: ImageBuild
    cpu_architecture: Literal["ARM64", "X86_64"] = "ARM64"
    """The CPU of the service's tasks (`compute.cpuArchitecture`): the image is built for that platform."""
    protect: bool = False


class ServiceImage(pulumi.ComponentResource):
    """One service's ECR repository and the image built from its Dockerfile."""

    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    image_ref: pulumi.Output[str]
    """`<repository url>:<tag>@sha256:<digest>`: what the task definition runs."""

    def __init__(
        self,
        name: str,
        args: ServiceImageArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("microservices:images:ServiceImage", name, None, opts)
        import pulumi_docker_build as docker_build  # only programs that build images load the provider SDK

        tags = context.with_tags(Service=args.service)
        production = context.environment == "prod"
        repository = aws.ecr.Repository(
            f"{name}-repo",
            name=f"microservices/{context.environment}/{args.service}",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=context.key_arn)
            ],
            force_delete=not production,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id)
        tag = source_tag(args.build)
        image = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=args.build.context),
            dockerfile=docker_build.DockerfileArgs(location=args.build.dockerfile),
            platforms=[docker_build.Platform(PLATFORMS[args.cpu_architecture])],
            tags=[pulumi.Output.concat(repository.repository_url, ":", tag)],
            push=True,
            build_on_preview=False,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url,
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )
            ],
            labels={"org.opencontainers.image.title": args.service, "org.opencontainers.image.version": tag},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.image_ref = image.ref
        self.register_outputs(
            {"repositoryUrl": self.repository_url, "repositoryArn": self.repository_arn, "imageRef": self.image_ref}
        )
