# The two commands: `make demo` (the main job) and `make test` (every check).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PG_URL := postgresql+psycopg://edgeloop:edgeloop@127.0.0.1:5432/edgeloop_test

.PHONY: demo test lint typecheck imports pytest services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgeloop demo

test: lint typecheck imports services pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

services:
	scripts/test-services.sh

pytest: $(STAMP) services
	EDGELOOP_TEST_PG_URL=$(PG_URL) $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/data.py
	$(BIN)/python benchmarks/profile_memory.py --edges
	$(BIN)/python benchmarks/pipelines.py
	$(BIN)/python benchmarks/edge.py
	$(BIN)/python benchmarks/qemu_calibrate.py
	$(BIN)/python benchmarks/monitoring.py
	$(BIN)/python benchmarks/fleet.py

clean:
	rm -rf $(VENV) .edgeloop .peers .pytest_cache .mypy_cache .ruff_cache
