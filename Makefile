# Sommelier: `make up` brings the whole stack up, `make test` proves it. `make help` lists the rest.

PYTHON ?= python3
VENV ?= .venv
EMULATOR_PORT ?= 4566
FRONTEND_PORT ?= 8080
PY := $(VENV)/bin/python
# compose when a Docker engine answers, else the embedded runtime; force one with STACK=compose|embedded
STACK ?= $(shell docker info >/dev/null 2>&1 && echo compose || echo embedded)
COMPOSE ?= docker compose
REQS := requirements/dev.txt requirements/constraints.txt pyproject.toml $(wildcard services/*/requirements.txt)

export SOMMELIER_EMULATOR_PORT := $(EMULATOR_PORT)
export SOMMELIER_FRONTEND_PORT := $(FRONTEND_PORT)

.DEFAULT_GOAL := help
.PHONY: help install up down status logs train promote rollback history metrics test test-unit test-integration test-compose bench lint clean

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

up: install ## start the whole stack (compose if Docker answers, else embedded MiniStack) and print how to use it
ifeq ($(STACK),compose)
	@echo "Docker engine found: Docker Compose + LocalStack (STACK=embedded runs without Docker)"
	@test -f .env || cp .env.example .env
	@mkdir -p .sommelier/compose
	$(COMPOSE) up --build --detach --wait localstack frontend
	$(COMPOSE) run --rm trainer
	@$(PY) -m devstack summary .sommelier/compose/stack.json --frontend-url http://127.0.0.1:$(FRONTEND_PORT)
else
	@echo "no Docker engine (or STACK=embedded): the embedded runtime, MiniStack as a local process"
	@$(PY) -m devstack up
endif

down: install ## stop every process or container `make up` started (state is kept)
ifeq ($(STACK),compose)
	$(COMPOSE) down
else
	@$(PY) -m devstack down
endif

status: install ## show the stack's processes
	@$(PY) -m devstack status

logs: install ## show emulator, predictor-function and frontend logs
ifeq ($(STACK),compose)
	$(COMPOSE) logs --tail 100
else
	@$(PY) -m devstack logs
endif

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

test-compose: install ## the integration suite against the compose stack (needs a Docker engine; skips without one)
	SOMMELIER_TEST_STACK=compose $(PY) -m pytest tests/integration

BENCH_FLAGS ?=
bench: install ## benchmarks on a fresh embedded stack -> bench/results/latest.{json,md,png} (BENCH_FLAGS="--fresh-clone --make-test" adds those)
	$(PY) -m bench.run $(BENCH_FLAGS)

lint: install ## ruff
	$(VENV)/bin/ruff check .

clean: down ## stop the stack and delete its state (.sommelier/)
	rm -rf .sommelier
