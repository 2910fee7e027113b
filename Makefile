# Gatewayz. `make run` serves a working gateway on a fresh machine; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run test test-main test-embedded lint migrate-check bench bench-choices bench-instructions bench-monitoring bench-capacity bench-cluster chaos clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Gatewayz needs Python 3.11+ (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# The JavaScript clients the compatibility tests drive (tests/js; needs Node 20+ and npm).
JS_INSTALLED := tests/js/node_modules/.package-lock.json
$(JS_INSTALLED): tests/js/package-lock.json
	@command -v npm >/dev/null && cd tests/js && npm ci --no-audit --no-fund --loglevel=error || \
		echo "npm not found: the JavaScript client tests (tests/compat/test_js_clients.py) will skip"

install: $(INSTALLED) $(JS_INSTALLED)

run: $(INSTALLED)
	@scripts/run-local.sh

# Both lanes: Postgres + Redis (the production stack), then the smoke tests on the embedded
# default (SQLite, no Redis), as `make run` serves it.
test: test-main test-embedded

test-main: $(INSTALLED) $(JS_INSTALLED)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-embedded: $(INSTALLED)
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-embedded.sqlite3 REDIS_URL= \
		$(PY) -m pytest -q -m smoke $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings_test DATABASE_URL=sqlite://:memory: \
		$(PY) manage.py makemigrations --check --dry-run

# Every migration, from an empty Postgres database (the test suite builds its tables from
# the models instead, for speed).
migrate-check: $(INSTALLED)
	scripts/migrate-check.sh

# The comparison with LiteLLM runs it from its own venv; never 1.82.7 or 1.82.8 (malicious).
LITELLM_VERSION := 1.100.0
LITELLM_VENV := bench/.venv-litellm

$(LITELLM_VENV)/.installed:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)'
	@touch $@

bench: $(INSTALLED) $(LITELLM_VENV)/.installed
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m bench.run $(BENCH_ARGS)

# The measurements behind two choices: the upstream HTTP client and the ASGI server.
bench-choices: $(INSTALLED)
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m bench.choices $(BENCH_ARGS)

# Instructions per request under callgrind: the steady measure for A/B on a noisy machine.
bench-instructions: $(INSTALLED)
	@command -v wrk >/dev/null || apt-get install -y wrk
	@command -v valgrind >/dev/null || apt-get install -y valgrind
	$(PY) -m bench.instructions $(BENCH_ARGS)

# The monitoring, usage and discovery endpoints over a million logged requests (bench/README.md).
bench-monitoring: $(INSTALLED)
	$(PY) -m bench.monitoring $(BENCH_ARGS)

# What the Redis Cluster wire costs per script call, against one server's.
bench-cluster: $(INSTALLED)
	$(PY) -m bench.cluster_wire $(BENCH_ARGS)

# What one request costs Redis and Postgres: the figures of docs/scaling.md.
bench-capacity: $(INSTALLED)
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m bench.capacity $(BENCH_ARGS)

# The chaos soak (docs/chaos.md): the production processes on a Postgres cluster and a Redis
# of its own, a seeded load, seeded faults, then the money invariants. Non-zero on a failure.
CHAOS_MINUTES ?= 2
CHAOS_SEED ?= 22
chaos: $(INSTALLED)
	@command -v redis-server >/dev/null || apt-get install -y redis-server
	$(PY) -m bench.chaos --minutes $(CHAOS_MINUTES) --seed $(CHAOS_SEED) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var
