# `make demo` and `make test` create .venv on first use and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-scale soak soak-prod fuzz fuzz-api clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nudgeflow demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The hostile-input fuzz test with many more examples than CI runs (FUZZ_EXAMPLES to change).
fuzz: $(STAMP)
	NUDGEFLOW_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),500) $(BIN)/python -m pytest tests/test_hostile_input.py

lint: $(STAMP)
	$(BIN)/ruff check engine nodes web tests
	$(BIN)/mypy

# The dispatcher kill test at length: SOAK_KILLS SIGKILLs per database (CI runs 8).
SOAK_KILLS ?= 60
soak: $(STAMP)
	NUDGEFLOW_SOAK_KILLS=$(SOAK_KILLS) $(BIN)/python -m pytest -s tests/test_dispatch_kills.py

# schemathesis with many generated requests per API operation, on SQLite and PostgreSQL
# (NUDGEFLOW_TEST_POSTGRES_URL); the test suite runs the same test with 10.
fuzz-api: $(STAMP)
	NUDGEFLOW_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),300) $(BIN)/python -m pytest --timeout=0 tests/test_api_schemathesis.py

bench: $(STAMP)
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

# The benchmarks at 1M and 10M customers (tests/bench_scale.py): the daily run, a segment count,
# dispatch of 100k and the past-due export, each against the least code that does the same, with
# peak memory and growth; the data is generated once per size and kept (--drop deletes it).
bench-scale: $(STAMP)
	$(BIN)/python -m tests.bench_scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The production soak (tests/soak_prod.py): PostgreSQL (NUDGEFLOW_TEST_POSTGRES_URL), four
# workers SIGKILLed at random, the gunicorn web tier under 2,000 loopback requests, a run over
# SOAK_CUSTOMERS customers and SOAK_DISPATCH emails; prints the API's p50 and p99.
SOAK_CUSTOMERS ?= 1000000
SOAK_DISPATCH ?= 100000
soak-prod: $(STAMP)
	SOAK_CUSTOMERS=$(SOAK_CUSTOMERS) SOAK_DISPATCH=$(SOAK_DISPATCH) $(BIN)/python -m tests.soak_prod
