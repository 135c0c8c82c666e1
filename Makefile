# Sommelier: `make up` brings the whole stack up, `make test` proves it. `make help` lists the rest.
#
# Every stack command goes through `python -m ops` (ops/), which reads the running stack's
# .sommelier/stack.json (its runtime and ports): give EMULATOR_PORT / FRONTEND_PORT / STACK
# to `make up` once, never again to the commands after it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OPS := $(PY) -m ops
UV := $(VENV)/bin/uv
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements/dev.txt)
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --no-emit-index-url --no-emit-find-links --allow-unsafe --strip-extras

# Given on the command line (or in the environment) only: otherwise the running stack's own values hold.
ifdef EMULATOR_PORT
export SOMMELIER_EMULATOR_PORT := $(EMULATOR_PORT)
endif
ifdef FRONTEND_PORT
export SOMMELIER_FRONTEND_PORT := $(FRONTEND_PORT)
endif
ifdef STACK
export SOMMELIER_STACK := $(STACK)
endif
ifdef WARM_WORKERS
export SOMMELIER_WARM_WORKERS := $(WARM_WORKERS)
endif

.DEFAULT_GOAL := help
.PHONY: help install lock up down status logs info train promote rollback canary-evaluate history monitor metrics test test-unit test-integration \
        images deploy destroy train-task deploy-rehearsal test-compose test-fresh bench lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements/dev.txt requirements/checkov.txt pyproject.toml $(wildcard client/sommelier_client/*.py) $(wildcard services/contract/sommelier_contract/*.py) localstack-init/hooklib.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required: make PYTHON=python3.11 ...")'
	@# a venv without pip is what a failed `python3 -m venv` leaves (no ensurepip): start it again
	@test -x $(VENV)/bin/pip || $(PYTHON) -m venv --clear $(VENV)
	@# uv installs exactly the lock (the same pins and wheels pip would), in ~5 s where pip takes ~50 s (measured
	@# 2026-12-02, empty caches, 2 cores); the lock pins uv itself, so the sync keeps it. --compile-bytecode: pip
	@# compiles what it installs and uv does not, and where PYTHONDONTWRITEBYTECODE is set (this machine) or the
	@# folder is read-only no process ever writes it: each compiled botocore, MiniStack, pandas... from source at
	@# every start (botocore 0.80 -> 0.26 s, the emulator's start 5.8 -> 1.5-2.2 s; ~35 s once, at install)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) requirements/dev.txt
	@# the client + `sommelier` command and the contract, as a regular (not editable) install, built afresh (--no-cache:
	@# uv keys a local build on pyproject.toml alone) whenever a file of either changes
	$(UV) pip install --quiet --compile-bytecode --python $(PY) --no-cache --no-deps --no-build-isolation --reinstall .
	@rm -rf build client/*.egg-info
	@# checkov (template lint in make test) in a venv of its own: its dependencies never constrain ours
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv --clear --without-pip .venv-checkov
	$(UV) pip sync --quiet --compile-bytecode --python .venv-checkov/bin/python requirements/checkov.txt
	@touch $@

install: $(VENV)/.installed ## create .venv with every locked dependency (requirements/dev.txt)

lock: ## regenerate the lock files in requirements/ from the top-level pins (pip-compile)
	@test -x $(VENV)/bin/pip-compile || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet pip-tools==7.6.2; }
	$(PIP_COMPILE) -o requirements/dev.txt requirements/dev.in
	@# the images' locks, held to the same versions as the dev lock
	$(PIP_COMPILE) -c requirements/dev.txt -o requirements/predictor.txt services/predictor/requirements.txt
	$(PIP_COMPILE) -c requirements/dev.txt -o requirements/trainer.txt services/trainer/requirements.txt
	$(PIP_COMPILE) -c requirements/dev.txt -o requirements/frontend.txt services/frontend/requirements.txt
	$(PIP_COMPILE) -c requirements/dev.txt -o requirements/predictor-image.txt requirements/predictor-image.in
	$(PIP_COMPILE) -c requirements/dev.txt -o requirements/predictor-zip.txt requirements/predictor-zip.in
	$(PIP_COMPILE) -c requirements/dev.txt -o requirements/emulator.txt requirements/emulator.in
	$(PIP_COMPILE) -o requirements/checkov.txt requirements/checkov.in

up: install ## start the whole stack and print how to use it (STACK=embedded|compose, EMULATOR_PORT=, FRONTEND_PORT=, WARM_WORKERS=16)
	@$(OPS) up

down: install ## stop every process or container `make up` started (state is kept)
	@$(OPS) down

status: install ## is the stack up? its runtime, ports and processes
	@$(OPS) status

info: install ## how to use the running stack (API URL, key, frontend)
	@$(OPS) info

logs: install ## emulator, frontend and predictor-function logs (FOLLOW=1 keeps following)
	@$(OPS) logs $(if $(FOLLOW),--follow)

train: install ## train on the running stack (the champion's dataset; DATASET=name: datasets/<name>; METRIC=accuracy|f1_macro|log_loss): compare, evaluate, gate
	@$(if $(DATASET),SOMMELIER_DATASET_PREFIX=datasets/$(DATASET)) $(OPS) train $(if $(METRIC),--metric $(METRIC))

promote: install ## make VERSION=<model version> the champion (artifacts verified first; WHY="..." is recorded with who and when)
	@test -n "$(VERSION)" || { echo "usage: make promote VERSION=<model version>  (make history lists them)"; exit 2; }
	@$(OPS) promote "$(VERSION)" $(if $(YES),--yes) $(if $(WHY),--why "$(WHY)")

rollback: install ## restore the champion before the current one
	@$(OPS) rollback

canary-evaluate: install ## promote the candidate model on trial, or roll it back, on live evidence (also every 5 minutes)
	@$(OPS) canary-evaluate

history: install ## every model version: dataset, scores, gate decision, champion marker (WIDE=1 whole reasons, JSON=1 for scripts)
	@$(OPS) history $(if $(JSON),--json) $(if $(WIDE),--wide)

monitor: install ## model monitoring now: drift per feature, data quality, class mix, accuracy (SINCE=24h; chart .sommelier/monitoring.png)
	@$(OPS) monitor --since $(or $(SINCE),24h) --png .sommelier/monitoring.png

metrics: install ## summary of the last hour's metrics and a chart (.sommelier/metrics.png)
	@$(OPS) metrics --png .sommelier/metrics.png

test: install ## run every test: the unit suite beside the integration suite (a fresh embedded stack of its own)
	@# Side by side: the integration suite keeps one of 2 cores busy on average (measured 2026-12-02: 50% over its 6 min,
	@# the rest waiting on the emulator and its workers) and the unit suite takes the other; one after the other they
	@# took 11-12 min here, over the 10-minute budget. The unit suite's output follows the integration suite's.
	@unit_log=$$(mktemp); summary=$$(mktemp); export TEST_SUMMARY_FILE=$$summary; started=$$(date +%s); \
	  $(PY) -m pytest tests/unit -p no:cacheprovider > $$unit_log 2>&1 & unit=$$!; \
	  trap 'kill $$unit 2>/dev/null; rm -f $$unit_log $$summary' EXIT; \
	  $(PY) -m pytest tests/integration; integration=$$?; \
	  wait $$unit; unit_rc=$$?; echo; echo "=== the unit suite (ran beside the integration suite):"; cat $$unit_log; \
	  echo; echo "=== make test: $$(( $$(date +%s) - started )) s in all, the two suites side by side"; cat $$summary; \
	  test $$integration -eq 0 -a $$unit_rc -eq 0

test-unit: install ## unit tests only (no network)
	$(PY) -m pytest tests/unit

test-integration: install ## integration tests only
	$(PY) -m pytest tests/integration

test-compose: install ## the integration suite against the compose stack (needs Docker or Podman; skips without one)
	@$(OPS) images
	SOMMELIER_TEST_STACK=compose $(PY) -m pytest tests/integration

images: ## build every image (predictor, trainer, frontend, emulator) tagged with the git revision; prints sizes
	bash containers/images.sh

test-fresh: ## .ci/run on a clean clone of HEAD inside a fresh container (Podman; nothing of this machine's installs)
	bash containers/test-fresh.sh

deploy: install ## deploy to the AWS account of your credentials (AWS_PROFILE, AWS_REGION, DEPLOY_*; YES=1 skips the prompt)
	@$(OPS) deploy $(if $(YES),--yes)

destroy: install ## delete the deployed stacks (PURGE=1 also deletes the data, model and page buckets)
	@$(OPS) destroy $(if $(YES),--yes) $(if $(PURGE),--purge)

train-task: install ## the trainer image as the ECS Fargate task (RunTask), logs followed: the running compose stack's (DATASET=name), else the deployed one's (DEPLOYED=1)
	@$(if $(DATASET),SOMMELIER_DATASET_PREFIX=datasets/$(DATASET)) $(OPS) train-task

deploy-rehearsal: install ## make deploy end to end against a fresh emulator, the full suite against it, redeploy, destroy
	@$(OPS) rehearse

BENCH_FLAGS ?=
bench: install ## benchmarks on a fresh embedded stack -> bench/results/latest.{json,md,png} (BENCH_FLAGS: --serving-only, --compose (the compose stack's serving), --fresh-clone --make-test; one part again: --families-only, --training-only, --text-only [--text-max-rows N], --poisoning-only, --history-only, --monitoring-only)
	$(PY) -m bench.run $(BENCH_FLAGS)

lint: install ## ruff, and mypy on services/ and the contract
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

clean: ## stop the stack and delete its state (.sommelier/)
	@test ! -x $(PY) || $(OPS) down --purge
	rm -rf .sommelier
