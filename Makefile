# PerfWatch developer commands. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install run test fuzz lint format bench seed migrate clean up down logs ps psql redis-cli e2e

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): backend/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'backend[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install PerfWatch with its dev tools

run: $(STAMP)  ## Serve on the embedded default (SQLite + in-process cache) at 127.0.0.1:8000
	$(BIN)/perfwatch serve --host $(HOST) --port $(PORT)

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: $(STAMP)  ## Run the test suite (starts a throwaway PostgreSQL 16 and Redis if none is given)
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$status

# Schemathesis over the OpenAPI spec (tests/api/test_api_fuzz.py): about a minute of generated
# requests, so `make test` skips it (PERFWATCH_FUZZ unset) and CI runs both.
fuzz: $(STAMP)  ## Fuzz the HTTP API from its OpenAPI spec: no 5xx, responses as documented
	@PERFWATCH_FUZZ=1 $(BIN)/pytest tests/api/test_api_fuzz.py -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no fuzz tests" >&2; exit 1; fi; exit $$status

lint: $(STAMP)  ## ruff lint + format check, mypy on perfwatch/, import directions (import-linter)
	$(BIN)/ruff check --config backend/pyproject.toml backend tests bench
	$(BIN)/ruff format --check --config backend/pyproject.toml backend tests bench
	cd backend && ../$(BIN)/mypy perfwatch
	cd backend && ../$(BIN)/lint-imports --no-cache

format: $(STAMP)  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix --config backend/pyproject.toml backend tests bench
	$(BIN)/ruff format --config backend/pyproject.toml backend tests bench

bench: $(STAMP)  ## Benchmarks on PostgreSQL 16: prints BENCH lines, writes bench/results.json
	$(BIN)/python bench/run.py

seed: $(STAMP)  ## Demo history (SEED_ARGS="--days 7 --interval 1")
	$(BIN)/perfwatch db upgrade
	$(BIN)/perfwatch seed $(SEED_ARGS)

# The compose stack's backend when it is running, else DATABASE_URL / the embedded file.
migrate:  ## Apply migrations (docker compose exec backend alembic upgrade head, or locally)
	@if [ -n "$$($(COMPOSE) ps -q backend 2>/dev/null)" ]; then \
		$(COMPOSE) exec backend alembic upgrade head; \
	else \
		$(MAKE) --no-print-directory $(STAMP) && $(BIN)/perfwatch db upgrade; \
	fi

# ----- Docker Compose stack -------------------------------------------------------------------
COMPOSE ?= docker compose

up:  ## Write .env with random secrets if missing, then start the stack and wait until healthy
	scripts/write-env.sh
	$(COMPOSE) up -d --build --wait

down:  ## Stop the stack (data volumes are kept; `docker compose down -v` erases them)
	$(COMPOSE) down

logs:  ## Follow the stack's logs
	$(COMPOSE) logs -f --tail=200

ps:  ## The stack's containers and their health
	$(COMPOSE) ps

psql:  ## psql inside the database container
	$(COMPOSE) exec db sh -c 'psql -U "$$POSTGRES_USER" -d "$$POSTGRES_DB"'

redis-cli:  ## redis-cli inside the Redis container
	$(COMPOSE) exec redis redis-cli

e2e: $(STAMP)  ## End-to-end test of docker-compose.yml with locally built stand-in images
	@PERFWATCH_E2E=1 $(BIN)/pytest tests/e2e -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no e2e tests" >&2; exit 1; fi; exit $$status

clean:  ## Remove the virtualenv and caches (keeps your data directory)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
