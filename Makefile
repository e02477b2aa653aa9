# The two commands: `make run` (set up and serve the product) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
export PORT

.PHONY: run test setup sandbox demo clean-venv chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi bootstrap
	@echo ""
	@echo "  Chatsource is starting on http://127.0.0.1:$(PORT)  (health: /healthz, Data API: /api/v1)"
	@echo "  Data API token:  $(BIN)/flask --app wsgi api-tokens create my-token"
	@echo "  amoCRM sandbox:  make sandbox   (in another terminal)"
	@echo ""
	WEB_CONCURRENCY=$${WEB_CONCURRENCY:-1} BIND_HOST=$${BIND_HOST:-127.0.0.1} $(BIN)/gunicorn wsgi:app -c gunicorn.conf.py

# Browser tests drive the system Chromium (never `playwright install`, which downloads).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: sudo apt-get install chromium (browser tests will be skipped)"; fi; }

test: setup chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The amoCRM sandbox alone, registered for the product's default client id/secret and callback.
sandbox: setup
	$(BIN)/python -m sandbox --host 127.0.0.1 --port $${SANDBOX_PORT:-8765} --seed demo \
	  --client-id $${AMOCRM_CLIENT_ID:-chatsource-demo} --client-secret $${AMOCRM_CLIENT_SECRET:-chatsource-demo-secret} \
	  --redirect-uri $${PUBLIC_URL:-http://127.0.0.1:$(PORT)}/oauth/amocrm/callback

clean-venv:
	rm -rf $(VENV)
