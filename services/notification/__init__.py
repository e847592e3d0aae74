"""Notification service: Lambda handler (`handler.handle`) that validates domain events against their
versioned contracts (`contracts.py`, `schemas/`) and publishes them to the notification SNS topic.

The Lambda package is this directory with `handler.py` at its root, minus tests, this file and the
infrastructure-only `service.py`. So `handler.py` and `contracts.py` import nothing from the rest of
the repository and no package the Lambda Python runtime lacks (standard library and boto3 only).
Keep this file free of imports: `services.load_catalog()` imports the package while looking for specs.
"""
