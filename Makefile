# Two entry points for a fresh machine:
#   make run   - create .venv, install, run the forecast job on the bundled sample data (no cluster needed)
#   make test  - install test dependencies (system packages included) and run the whole suite + linters
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
OUT ?= out

.PHONY: run test venv tools lint typecheck unit bench clean

$(STAMP): setup.cfg pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[test,dev,chinese]' --constraint requirements.lock
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/recharge-autoscaler forecast-job --config data/sample-config.yaml --once

tools: $(STAMP)
	bash scripts/install-test-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check forecaster controller tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) tools lint
	$(BIN)/python -m pytest

# The benchmarks' outside reference (statsforecast) is installed only for them.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[bench]' --constraint requirements.lock
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OUT) .tools .mypy_cache .ruff_cache .pytest_cache
