# Sommelier: `make up` brings the whole stack up, `make test` proves it. `make help` lists the rest.

PYTHON ?= python3
VENV ?= .venv
EMULATOR_PORT ?= 4566
FRONTEND_PORT ?= 8080
PY := $(VENV)/bin/python
REQS := requirements/dev.txt requirements/constraints.txt pyproject.toml $(wildcard services/*/requirements.txt)

export SOMMELIER_EMULATOR_PORT := $(EMULATOR_PORT)
export SOMMELIER_FRONTEND_PORT := $(FRONTEND_PORT)

.DEFAULT_GOAL := help
.PHONY: help install up down status logs train promote rollback history metrics test test-unit test-integration lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: $(REQS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -c requirements/constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(VENV)/.installed ## create .venv with every pinned dependency

up: install ## start the whole stack (embedded MiniStack runtime) and print how to use it
	@$(PY) -m devstack up

down: install ## stop every process `make up` started (state is kept in .sommelier/)
	@$(PY) -m devstack down

status: install ## show the stack's processes
	@$(PY) -m devstack status

logs: install ## show emulator, predictor-function and frontend logs
	@$(PY) -m devstack logs

train: install ## train on the running stack: compare families, evaluate, promote if the gate passes
	@$(PY) -m devstack trainer train

promote: install ## make VERSION=<model version> the champion (artifacts verified first)
	@test -n "$(VERSION)" || { echo "usage: make promote VERSION=<model version>  (see: make history)"; exit 2; }
	@$(PY) -m devstack trainer promote "$(VERSION)"

rollback: install ## restore the champion before the current one
	@$(PY) -m devstack trainer rollback

history: install ## list the champion pointers, newest first
	@$(PY) -m devstack trainer history

metrics: install ## summary of the last hour's metrics and a chart (.sommelier/metrics.png)
	@$(VENV)/bin/sommelier metrics --png .sommelier/metrics.png

test: install ## run every test: unit, then integration against a fresh embedded stack
	$(PY) -m pytest

test-unit: install ## unit tests only (no network)
	$(PY) -m pytest tests/unit

test-integration: install ## integration tests only
	$(PY) -m pytest tests/integration

lint: install ## ruff
	$(VENV)/bin/ruff check .

clean: down ## stop the stack and delete its state (.sommelier/)
	rm -rf .sommelier
