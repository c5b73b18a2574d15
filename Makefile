# PerfWatch developer commands. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install run test lint format bench seed migrate clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

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

lint: $(STAMP)  ## ruff lint + format check, mypy on perfwatch/
	$(BIN)/ruff check --config backend/pyproject.toml backend tests bench
	$(BIN)/ruff format --check --config backend/pyproject.toml backend tests bench
	cd backend && ../$(BIN)/mypy perfwatch

format: $(STAMP)  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix --config backend/pyproject.toml backend tests bench
	$(BIN)/ruff format --config backend/pyproject.toml backend tests bench

bench: $(STAMP)  ## Benchmarks on PostgreSQL 16: prints BENCH lines, writes bench/results.json
	$(BIN)/python bench/run.py

seed: $(STAMP)  ## Demo history (SEED_ARGS="--days 7 --interval 1")
	$(BIN)/perfwatch db upgrade
	$(BIN)/perfwatch seed $(SEED_ARGS)

migrate: $(STAMP)  ## Apply migrations to DATABASE_URL (or the embedded SQLite file)
	$(BIN)/perfwatch db upgrade

clean:  ## Remove the virtualenv and caches (keeps your data directory)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
