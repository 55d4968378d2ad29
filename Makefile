# Two commands matter: `make demo` (the whole pipeline on the bundled data) and `make test`.
# `make build` builds from what you loaded (`.venv/bin/loto-features ingest ...`), no samples.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DBT := $(VENV)/bin/dbt
export NUMBA_CACHE_DIR ?= $(CURDIR)/.local/numba_cache
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1
DEVICE ?= auto

.PHONY: install demo build test test-gpu gpu-features bench docs profile lint lint-python lint-sql format db-start db-stop clean dbt-build pytest coverage
.PHONY: realtime-demo generate

install: $(VENV)/.installed

# The first install takes a few minutes (about 1 GB of wheels: dbt, numba, scipy, tsfresh...):
# each step says what it does, and pip prints a line per package it collects and installs.
PIP := $(PY) -m pip install --disable-pip-version-check --progress-bar off
$(VENV)/.installed: requirements.lock pyproject.toml
	@echo "[1/4] virtual environment $(VENV) ($$($(PYTHON) --version 2>&1))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) --quiet --upgrade "pip>=24"
	@echo "[2/4] $$(grep -c '==' requirements.lock) pinned packages from requirements.lock (the first time: a few minutes)"
	@set -o pipefail; $(PIP) -r requirements.lock \
		| { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; } | cut -c1-120
	@echo "[3/4] the project itself (editable): $(VENV)/bin/loto-features"
	@$(PIP) --quiet --no-deps --no-build-isolation -e .
	@echo "[4/4] compiling the numba kernels, once, one process per core: under a minute, a line per family as it finishes (cached in $(NUMBA_CACHE_DIR); no later run pays it)"
	@$(PY) -m python_jobs warmup
	@touch $@
	@echo "installed: run \`make demo\`, or \`source $(VENV)/bin/activate\` to type \`loto-features\` directly"

profile: install
	@$(PY) -m python_jobs profile

# Every generated file, from one target: the column macros and the models' YAML (they follow
# the vars of dbt_project.yml and python_jobs/features/rolling_spec.py), then the generated
# parts of docs/ (which read that YAML). Run before a demo, a build or the docs (a no-op when
# up to date); `make lint` (and so `make test`) only checks them, so a stale file fails CI.
generate: install
	@$(PY) -m python_jobs generate-macros
	@$(PY) -m python_jobs.apidoc

demo: generate
	$(PY) -m python_jobs demo

# The whole pipeline on what the raw tables hold (your files), in dbt's order: seeds and
# staging, the Python job, the marts, then materialize into the online store. No samples.
build: generate
	$(PY) -m python_jobs build

gpu-features: install
	$(PY) -m python_jobs features --device $(DEVICE)

dbt-build: profile generate
	$(DBT) build

# pytest in parallel (pytest-xdist): a worker per core, at most 4, each building the schemas
# its tests share (python_jobs/tests/conftest.py keeps such tests on one worker).
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadgroup
pytest: install
	$(PY) -m pytest $(PYTEST_PARALLEL)

# The same tests with the line coverage of python_jobs. Tracing every Python call (dbt runs
# in-process) makes the run about half as long again, so `make test` leaves it out.
coverage: install
	$(PY) -m pytest $(PYTEST_PARALLEL) --cov=python_jobs --cov-report=
	@echo "python_jobs line coverage: $$($(PY) -m coverage report --format=total)% (per file: $(VENV)/bin/coverage report)"

lint: lint-python lint-sql

# The generated files are current, and ruff: seconds.
lint-python: install
	$(PY) -m python_jobs generate-macros --check
	$(PY) -m python_jobs.apidoc --check
	$(VENV)/bin/ruff check python_jobs bench
	$(VENV)/bin/ruff format --check python_jobs bench

# sqlfluff lints what dbt renders: the models and the singular tests, with every macro of
# macros/ loaded (.sqlfluff: load_macros_from_path), so a macro's SQL is linted where a model
# calls it and a broken macro file fails every model. A file of macros/ renders to nothing (it
# holds only macro and test definitions), so it is not linted by itself.
SQLFLUFF := $(VENV)/bin/sqlfluff lint models tests
lint-sql: install
	$(SQLFLUFF) --processes 2

format: install
	$(VENV)/bin/ruff format python_jobs bench
	$(VENV)/bin/ruff check --fix python_jobs bench

# Everything: the quick lint first, then pytest (against a real PostgreSQL) and, beside it,
# sqlfluff on one process. pytest runs the whole pipeline once as a user does (`python -m
# python_jobs demo`, seeds, models, data tests and unit tests, in a schema of its own: the
# session fixture `demo_run`), and the tests of the built marts read that schema. sqlfluff's
# output follows pytest's; either failing fails the target.
test: install
	$(MAKE) --no-print-directory lint-python
	@mkdir -p logs; \
	$(SQLFLUFF) --processes 1 > logs/sqlfluff.out 2>&1 & sqllint=$$!; \
	$(MAKE) --no-print-directory pytest; tests=$$?; \
	wait $$sqllint; sql=$$?; \
	echo "$(SQLFLUFF) (run beside pytest):"; cat logs/sqlfluff.out; \
	if [ $$sql -ne 0 ]; then echo "sqlfluff found problems (exit $$sql)"; fi; \
	[ $$tests -eq 0 ] && [ $$sql -eq 0 ]

bench: install
	$(PY) -m python_jobs bench
	@if [ "$(DEVICE)" = "gpu" ]; then $(PY) -m bench.families_gpu; fi

# The online half for a few seconds: a WebSocket feed of the bundled EUR/USD bars, the service,
# an embedded Redis (or REDIS_URL); prints latencies, counters and a sample of the Redis keys.
realtime-demo: install
	$(PY) -m python_jobs realtime demo --seconds 5 --rate 1000 --symbols 10
	@if [ -z "$$REDIS_URL" ]; then echo "the embedded Redis stays up for a look inside (README: Looking inside the embedded Redis); make db-stop stops it"; fi

# The GPU tests alone (CuPy against the CPU families, 1e-6), with the pinned [gpu] extra. They
# fail, not skip, where no GPU runs a smoke kernel (a CuPy kernel whose result is checked): the
# first line says why. CI has no GPU and does not run this target.
test-gpu: install
	@$(PY) -m python_jobs.gpu --driver
	@$(PIP) --quiet --no-build-isolation -c requirements.lock -e ".[gpu]"
	@$(PY) -m python_jobs.gpu
	LOTO_REQUIRE_GPU=1 $(PY) -m pytest -m gpu -rs python_jobs/tests

# The lineage site (one static file), and the generated parts of docs/ brought up to date.
docs: profile generate
	$(DBT) docs generate --static
	@echo "lineage site: $(CURDIR)/target/static_index.html (opens without a server)"
	@echo "feature report: $(VENV)/bin/loto-features report --loto loto6 writes $(CURDIR)/reports/loto6.html"

db-start: install
	@$(PY) -m python_jobs db start

db-stop: install
	@$(PY) -m python_jobs db stop

clean:
	rm -rf target logs .pytest_cache
