# autorollback: run `make help` for the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OLDEST := .venv-oldest
KUBECONFIG_LOCAL := $(CURDIR)/.cluster/kubeconfig
PYTEST_WORKERS ?= 6

.PHONY: help demo demo-metrics bench manifests venv lint format test unit e2e cluster-up cluster-down tools clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/autorollback: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[operator,test]'
	touch $@

$(OLDEST)/bin/autorollback: pyproject.toml constraints.txt tests/oldest-client.txt
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[operator]'
	$(OLDEST)/bin/pip install --quiet --disable-pip-version-check -r tests/oldest-client.txt
	touch $@

demo: ## start everything, break a release, watch autorollback roll it back
	hack/demo.sh

demo-metrics: ## start everything with a real Prometheus; a release becomes available, serves errors, fails its check and is rolled back
	hack/demo-metrics.sh

venv: $(BIN)/autorollback $(OLDEST)/bin/autorollback ## create .venv (package + test extra) and .venv-oldest (oldest client)

tools: ## build the pinned control plane, helm, promtool and prometheus (cached by version); faketime for the skew tests
	hack/system-packages.sh
	hack/build-tools.sh

bench: venv tools cluster-up ## benchmark, timed from outside in ms (BENCH_SCENARIOS=single,burst50,burst200,failfast,scale; also memory, bake500)
	$(BIN)/python bench/rollback_bench.py --scenarios $${BENCH_SCENARIOS:-single,burst50,burst200,failfast,scale}

manifests: ## regenerate deploy/ from the Helm chart
	hack/manifests.sh

cluster-up: ## build (first time only) and start the local control plane; kubeconfig in .cluster/kubeconfig
	hack/cluster.sh up

cluster-down: ## stop the local control plane and remove its state
	hack/cluster.sh down

lint: $(BIN)/autorollback ## ruff (lint, and formatting checked) and mypy --strict on the pure core; settings in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/autorollback ## rewrite the code as `make lint` wants it: ruff's safe fixes, then ruff format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: venv ## unit tests of the pure core
	$(BIN)/pytest tests/unit -q

e2e: venv tools cluster-up ## end-to-end tests on the local control plane
	$(BIN)/pytest tests/e2e -q -n $(PYTEST_WORKERS) --dist load --maxschedchunk 1 -m "not serial"
	$(BIN)/pytest tests/e2e -q -m serial

test: venv lint tools cluster-up ## everything: lint first (fails fast), then unit and end-to-end tests (the serial ones last, alone)
	$(BIN)/pytest tests -q -n $(PYTEST_WORKERS) --dist load --maxschedchunk 1 -m "not serial" --durations=15
	$(BIN)/pytest tests -q -m serial --durations=8

clean: cluster-down ## remove the virtualenv and the local cluster
	rm -rf $(VENV) $(OLDEST) build dist operator/*.egg-info
