"""Generic CQRS projection Lambda (deployed as-is: `handler.py`, standard library + boto3 only)."""
