"""The bottom of the import graph: what every layer may import and which imports nothing of ours.

`model.errors.ConfigError` is the one error a bad stack file, service spec or event contract raises.
The config models (`components/config.py`) and the service-spec models (`services/spec.py`) are the
other bottom modules: pure pydantic data, importing only this package (see ARCHITECTURE.md, "Imports").
"""
