"""Microservices platform on AWS: one Pulumi stack per environment (dev, staging, prod).

Thin by design: read and validate the stack config and the service catalogue (before any resource
exists), compose the platform's components, export what operators need.
"""

import pulumi

from components.platform import PlatformInputs, build_platform
from model.config import load_stack_config
from services import load_catalog

config = load_stack_config()
catalog = load_catalog()
platform = build_platform(PlatformInputs.resolve(pulumi.get_stack(), config, catalog))

for key, value in platform.exports().items():
    pulumi.export(key, value)
