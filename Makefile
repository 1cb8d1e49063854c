# The two commands that matter: `make demo` (a working gateway with demo data) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Test services: the machine's PostgreSQL and Redis (DB 15, flushed by the tests).
# The tests run in TEST_WORKERS pytest-xdist workers (one per core, at most 4: each starts Celery
# workers, servers and a Chromium of its own); worker i has its own test database
# (test_restitution_gw<i>) and Redis database (15 - i). PYTEST_ARGS="-n 0" runs them in one process.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/restitution
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
TEST_MARIADB_URL ?= mysql+pymysql://root@127.0.0.1:3306/legacy_insurer
DEMO_PORT ?= 8000
TELCO_PORT ?= 8081

.PHONY: venv demo test lint bench bench-scale bench-api bench-export faults load image image-check clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Embedded mode: SQLite, tasks run in-process, demo legacy systems generated under var/demo.
demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo --telco-port $(TELCO_PORT)
	$(PY) manage.py demo_serve --port $(DEMO_PORT) --telco-port $(TELCO_PORT)

test: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) GATEWAY_MODE=test \
	TEST_MARIADB_URL=$(TEST_MARIADB_URL) $(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# ruff, then the import contracts of .importlinter (the checkout on the path: the demo app is not installed).
lint: venv
	$(VENV)/bin/ruff check .
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports --no-logo

# Extraction and scale figures, "name value" lines last (docs/benchmarks.md).
bench: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) GATEWAY_MODE=test \
	$(PY) -m tests.bench.extraction $(BENCH_ARGS)

# The run behind docs/scaling.md (100 000 customers, 100 meters), then its worked plan.
bench-scale: venv
	mkdir -p var
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) GATEWAY_MODE=test \
	$(PY) -m tests.bench.extraction --customers 100000 --meters 100 --json var/bench-scale.json $(BENCH_ARGS)
	$(PY) -m tests.bench.scaleplan var/bench-scale.json

bench-api: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) GATEWAY_MODE=test \
	$(PY) -m tests.bench.api $(BENCH_ARGS)

bench-export: venv
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) GATEWAY_MODE=test \
	$(PY) -m tests.bench.exports $(BENCH_ARGS)

# Fault suite: private PostgreSQL and Redis, gunicorn, Celery (docs/reliability.md).
faults: venv
	$(PY) -m tests.faults.run $(FAULTS_ARGS)

# Load run against gunicorn on loopback (docs/benchmarks.md).
load: venv
	$(PY) -m tests.load.run $(LOAD_ARGS)

# The production image from docker/Dockerfile, with podman, no registry (docs/operations.md).
image:
	docker/podman/build.sh

# The image run as production runs it: migrate, web, worker, beat, a consent flow, compose.
image-check:
	docker/podman/check.sh

clean:
	rm -rf var staticfiles .pytest_cache
