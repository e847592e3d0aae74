"""Container health check: `python -m apps.probe http://127.0.0.1:8080/health`.

The image has no shell tools (no wget, no curl), so the check ECS runs (and the Dockerfile's
HEALTHCHECK, which must be the same command; tests/test_service_images.py compares them) is this
standard-library probe: exit 0 for a 2xx/3xx answer within 3 seconds, else 1.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m apps.probe URL", file=sys.stderr)
        return 2
    return 0 if probe(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
