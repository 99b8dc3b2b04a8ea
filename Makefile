# One Makefile for developers, pre-commit and CI alike.
#   make run      install, then serve the demo stack (stand-ins + LiteLLM proxy) on 127.0.0.1:4000
#   make test     install, then run the test suite
# Other targets: install redis lint typecheck validate eval bench check clean

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EVAL_DATA ?= ../shared/eval/routing_dev.jsonl

# Offline always: no model hub, no LiteLLM price-map download.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install redis run test lint typecheck validate eval bench figures check clean

# redis-server for the shared-ledger tests (a real server on a loopback port); Debian package.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(STAMP)

# torch first and pinned: the CPU wheel lies on disk; an unpinned torch pulls a multi-GB CUDA build.
# constraints.txt is the set of versions the tests last passed with (pyproject.toml keeps ranges).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/biorouter prepare
	touch $(STAMP)

run: install
	$(BIN)/biorouter serve --dev

redis:
	@command -v redis-server >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q redis-server || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server; }; }

test: install redis
	$(PY) -m pytest

lint: install
	$(BIN)/ruff check biorouter tests bench
	$(BIN)/ruff format --check biorouter tests bench

typecheck: install
	$(BIN)/mypy

validate: install
	$(BIN)/biorouter validate

# The external set first, with accuracy per source and the cross-source split (thresholds and the
# safety margin fitted on its tune half plus the own safety tuning set, reported on its check half),
# then the project's own held-out sets (a one-line summary each).
HOLDOUTS := $(wildcard tests/data/routing/*_holdout.jsonl)
SAFETY_TUNE := tests/data/routing/safety_tune.jsonl

eval: install
	$(BIN)/biorouter eval --data $(EVAL_DATA) --cross-source --tune-data $(SAFETY_TUNE)
	@for f in $(HOLDOUTS); do printf '%-45s ' "$$f"; $(BIN)/biorouter eval --data "$$f" | head -1; done

bench: install
	$(PY) bench/decision_latency.py
	$(PY) bench/sensitivity_eval.py
	$(PY) bench/detect_latency.py
	$(PY) bench/proxy_overhead.py --quick
	$(PY) bench/hook_stages.py --rounds 1
	$(PY) bench/chaos_soak.py --quick
	$(PY) bench/strategies.py --quick
	$(PY) bench/startup.py --repeats 1 --cold
	$(BIN)/biorouter eval --data $(EVAL_DATA)

# The figures the docs quote (docs/figures.json; tests/unit/test_docs_figures.py compares the docs with it).
figures: install
	$(PY) bench/eval_figures.py
	$(PY) bench/cli_latency.py --repeats 5

check: lint typecheck validate test

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis
