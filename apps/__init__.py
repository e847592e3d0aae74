"""Reference services: the application code that runs in the platform's Fargate tasks.

`apps/runtime/` is the service template every service is built on; `apps/<service>/` holds one
service (its ASGI app and its Dockerfile). The Pulumi program never imports this package: it only
hashes and builds it (see `components/images.py`), so the app dependencies (`.[apps]`) stay out of
the offline preview's path.
"""
