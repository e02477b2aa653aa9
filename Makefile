# The two commands: `make run` (set up and serve the product) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
export PORT
# An unset APP_ENV is production (core/platform/settings.py): the local commands say development themselves,
# the tests say test (tests/conftest.py). Export APP_ENV=production to try the production checks.
export APP_ENV ?= development

.PHONY: run test lint setup sandbox demo clean-venv chromium bench wrk lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# requirements*.txt are the lock: every package of the tree, pinned, with its hashes; pip refuses
# anything else (a re-uploaded or substituted file, an unpinned transitive dependency).
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# Rebuild the lock from requirements.in / requirements-dev.in (pip-tools in its own venv, never the
# product's). Versions already locked stay unless the .in file changes them: upgrade a package by
# editing its pin in the .in file (or `make lock LOCK_ARGS=--upgrade-package=NAME`), then `make test`.
TOOLS_VENV ?= .venv-tools
PIP_TOOLS_VERSION ?= 7.6.2
PIP_COMPILE = $(TOOLS_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock:
	@test -x $(TOOLS_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(TOOLS_VENV) && \
	  $(TOOLS_VENV)/bin/pip install --quiet pip-tools==$(PIP_TOOLS_VERSION); }
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --output-file=requirements-dev.txt requirements-dev.in

# Translations are build products (.mo files are git-ignored): ours, and Flask-Admin's Russian.
setup: $(VENV)/.installed
	@$(BIN)/pybabel compile -d web/translations
	@$(BIN)/python -m web.i18n

# What the Procfile runs (launch.py): release, then web alone (embedded worker) or, with REDIS_URL,
# web + worker under honcho.
run: setup
	@echo ""
	@echo "  Chatsource is starting on http://127.0.0.1:$(PORT)  (health: /healthz, Data API: /api/v1)"
	@echo "  Data API token:  $(BIN)/flask --app wsgi api-tokens create my-token"
	@echo "  amoCRM sandbox:  make sandbox   (in another terminal)"
	@echo ""
	WEB_CONCURRENCY=$${WEB_CONCURRENCY:-1} BIND_HOST=$${BIND_HOST:-127.0.0.1} $(BIN)/python launch.py

# Browser tests drive the system Chromium (never `playwright install`, which downloads).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: sudo apt-get install chromium (browser tests will be skipped)"; fi; }

# ruff (lint + import order, pyproject.toml) and the architecture contracts (import-linter, pyproject.toml).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: setup chromium lint
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The amoCRM sandbox alone, registered for the product's default client id/secret and callback.
sandbox: setup
	$(BIN)/python -m sandbox --host 127.0.0.1 --port $${SANDBOX_PORT:-8765} --seed demo \
	  --client-id $${AMOCRM_CLIENT_ID:-chatsource-demo} --client-secret $${AMOCRM_CLIENT_SECRET:-chatsource-demo-secret} \
	  --redirect-uri $${PUBLIC_URL:-http://127.0.0.1:$(PORT)}/oauth/amocrm/callback

# The try-it path: the product and the amoCRM sandbox side by side (Procfile.demo, honcho), on SQLite
# with the in-process worker. Sign in at http://127.0.0.1:$(PORT)/admin/ as admin@example.ru.
DEMO_ADMIN_EMAIL ?= admin@example.ru
DEMO_ADMIN_PASSWORD ?= chatsource-demo
SANDBOX_PORT ?= 8765
demo: export AMOCRM_ALLOWED_HOSTS ?= *.amocrm.ru,*.amocrm.com,*.kommo.com,127.0.0.1,localhost
demo: export AMOCRM_CLIENT_ID ?= chatsource-demo
demo: export AMOCRM_CLIENT_SECRET ?= chatsource-demo-secret
demo: export PUBLIC_URL ?= http://127.0.0.1:$(PORT)
demo: export SANDBOX_PORT := $(SANDBOX_PORT)
demo: export RECONCILE_INTERVAL_SECONDS ?= 60
demo: setup
	$(BIN)/flask --app wsgi db upgrade
	ADMIN_EMAIL=$(DEMO_ADMIN_EMAIL) ADMIN_PASSWORD=$(DEMO_ADMIN_PASSWORD) $(BIN)/flask --app wsgi bootstrap
	@echo ""
	@echo "  Chatsource admin:  $(PUBLIC_URL)/admin/   ($(DEMO_ADMIN_EMAIL) / $(DEMO_ADMIN_PASSWORD) unless that user existed)"
	@echo "  amoCRM sandbox:    http://127.0.0.1:$(SANDBOX_PORT)/   (AmoCRM URL: http://127.0.0.1:$(SANDBOX_PORT),"
	@echo "                     Token URL: http://127.0.0.1:$(SANDBOX_PORT)/oauth2/access_token)"
	@echo ""
	PATH="$(abspath $(BIN)):$$PATH" WEB_CONCURRENCY=1 BIND_HOST=127.0.0.1 $(BIN)/honcho -f Procfile.demo start

clean-venv:
	rm -rf $(VENV)

# Benchmarks (docs/benchmarks.md): the Procfile's web + worker on the local PostgreSQL and
# Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL), loopback only. `make bench BENCH=latency` runs one.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing: sudo apt-get install wrk"; exit 1; fi; }

bench: setup wrk
	$(BIN)/python -m bench $(BENCH)
