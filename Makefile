# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/canonical.py
	$(BIN)/python bench/append.py
	$(BIN)/python bench/checkpoint.py
	$(BIN)/python bench/evidence.py
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/rollback.py
	$(BIN)/python bench/auth.py
