"""The rules of the microservices-guardrails policy pack, one module per area.

Every module exposes `RULES`: `core.ResourceRule` / `core.StackRule` objects whose `check` is a pure
function over lightweight resource views (see `core`), and whose `policy()` is the pulumi_policy
object the pack serves. `policies/__main__.py` assembles them into the PolicyPack.
"""
