"""The bottom of the import graph: plain data that every layer reads and that imports nothing above it.

- `model.config`: the typed stack configuration (`StackConfig` and its sections), read once from the
  `microservices:` namespace and validated before any resource is declared (`load_stack_config`).
- `model.spec`: the service-spec models (`ServiceSpec`, its stores, subscriptions, sagas, read models).
  A spec file, `services/<name>.py`, imports them from here and nothing else of ours.
- `model.aws_limits`: limits AWS documents for values the program writes (with their sources), used by
  the config validation, the components and the offline preflight; `model/data/` holds the dated lists.
- `model.errors`: `ConfigError`, the one error a bad stack file, service spec or event contract raises.

These modules import only the standard library, pydantic and pulumi (`ConfigError` is a
`pulumi.RunError`); `tests/test_import_direction.py` enforces it (ARCHITECTURE.md, "Imports flow one way").
"""
