"""Contracts between services (seed: contract testing, API-first) and the checks that keep them honest.

* `openapi/<service>.yaml`: the OpenAPI 3.1 document of each Fargate service's HTTP API (the spec's
  `api_contract`), validated with openapi-spec-validator. `openapi/released/<service>/<version>.yaml`
  keeps every released version.
* `http.py`: which operations each caller `uses` (spec field, `<service>.<operationId>`), checked
  against the callee's contract; and the compatibility of a new contract version with the last
  released one for the operations in use (nothing removed, nothing narrowed).
* `events.py`: backward compatibility of a new event schema version with the previous one.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""Repository root: spec `api_contract` paths are relative to it."""
