# Cromwell Courier: every target sets up what it needs (`make test` on a fresh clone works).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= us-east-1
export PATH := $(abspath $(VENV))/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

REQS := layers/courier/requirements.txt layers/tracing/requirements.txt functions/submit/requirements.txt functions/notify/requirements.txt

.PHONY: help venv lint format typecheck validate build test test-unit test-integration test-e2e bench demo stack replay clean ci scan reliability

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(REQS)
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQS)) --group dev
	@touch $@

venv: $(VENV)/.installed ## create .venv (Python 3.13) with runtime and dev dependencies

lint: venv ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: venv ## mypy (strict) on the deployed code
	$(VENV)/bin/mypy

validate: venv ## sam validate --lint and cfn-lint on template.yaml
	$(VENV)/bin/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint template.yaml

build: venv ## sam build (layer and functions)
	$(VENV)/bin/sam build --template template.yaml --parallel

test: venv ## the whole test suite: unit, integration (moto + Cromwell-compatible server), end-to-end
	$(PY) -m pytest

test-unit: venv
	$(PY) -m pytest tests/unit

test-integration: venv
	$(PY) -m pytest tests/integration

test-e2e: venv
	$(PY) -m pytest tests/e2e

bench: venv ## benchmarks; figures are written to docs/benchmarks.md (ARGS='--quick', '--stack-shards N', names)
	$(PY) -m tests.bench $(ARGS)

demo: venv ## run the whole flow on loopback and print the timeline
	$(PY) -m local.demo

stack: venv ## keep the local stack up and drop your own folders into it: make stack ARGS='--drop dir'
	$(PY) -m local.stack $(ARGS)

replay: venv ## replay parked submit events: make replay QUEUE_URL=... FUNCTION=...
	$(PY) scripts/replay.py --queue-url "$(QUEUE_URL)" --function "$(FUNCTION)"

reliability: venv ## fault, storm and hostile-input suites; counts are written to docs/reliability.md
	$(PY) -m tests.reliability

# Security scanners live in their own venv, built from requirements-scan.txt, so that their
# dependency pins never constrain the project's.
SCAN_VENV ?= .venv-scan

$(SCAN_VENV)/.installed: requirements-scan.txt
	@test -x $(SCAN_VENV)/bin/python || "$$(scripts/find-python)" -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install --quiet -r requirements-scan.txt
	@touch $@

# Suppressions carry their reasons where they are: `checkov: skip` entries (with a comment) in
# template.yaml's Metadata, `# nosec BXXX` with its reason beside it in the code. Bandit runs on local/ and
# scripts/ with B404/B603/B607 skipped: those are tools that start processes (miniwdl, sam)
# by design, never deployed. See docs/security.md.
scan: venv $(SCAN_VENV)/.installed ## security scans: cfn-lint, checkov, bandit, pip-audit
	$(VENV)/bin/cfn-lint template.yaml
	$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(SCAN_VENV)/bin/bandit -q -r layers functions
	$(SCAN_VENV)/bin/bandit -q -r local scripts --skip B404,B603,B607
	$(SCAN_VENV)/bin/python scripts/audit_deps.py --pip-audit $(SCAN_VENV)/bin/pip-audit --venv $(VENV)

ci: lint typecheck validate scan build test ## what .ci/run runs

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .benchmarks
