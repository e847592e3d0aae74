"""Notification service: Lambda handler (`handler.handle`) that validates domain events against their
versioned contracts (the top-level `contracts` package) and publishes them to the notification SNS topic.

The Lambda package is this directory with `handler.py` at its root, minus tests, this file and the
infrastructure-only `service.py`, plus the `contracts/` package. So `handler.py` imports nothing from the
rest of the repository but `contracts`, and no package the Lambda Python runtime lacks (standard
library and boto3 only).
Keep this file free of imports: `services.load_catalog()` imports the package while looking for specs.
"""
