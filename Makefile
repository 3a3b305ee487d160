# EthHook: `make test` runs every check CI runs; `make demo` runs the whole pipeline locally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint unit demo bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check ethhook celeryconfig.py workers
	$(BIN)/mypy ethhook
	$(BIN)/lint-imports
	$(BIN)/deptry .

# The whole pipeline on a local chain (anvil), with a verifying receiver and a summary.
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/ethhook demo $(DEMO_ARGS)

# The whole suite: lint, types, then every tier (real PostgreSQL, Redis, Celery workers, anvil
# chain nodes and loopback receivers) in PYTEST_WORKERS processes side by side: the tests mostly
# wait on those. Each process has its own database, redis-server and ports (the fault tier its own
# PostgreSQL cluster too), and takes whole modules (their nodes and servers set up once), the
# longest first; the RabbitMQ tests take turns on the machine's RabbitMQ (tests/conftest.py).
# Four: with five, the suite's busiest minutes had 30–40 processes runnable on the 2 cores and
# start-up bounds of 60–120 s ran out; the suite is CPU-bound there, so one fewer costs little.
PYTEST_WORKERS ?= 4
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: lint
	$(BIN)/pytest $(XDIST)

# The inner loop: unit and integration tiers without their slow and long modules, no lint.
test-fast: $(STAMP)
	$(BIN)/pytest $(XDIST) --fast tests/unit tests/integration

# Benchmarks (bench/RESULTS.md): every figure beside a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run --quick

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
