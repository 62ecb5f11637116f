# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint bench lock

# The exact versions of requirements.lock, then Driftledger itself (editable, nothing else).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e '.[dev]'
	touch $(STAMP)

# Re-resolve pyproject.toml's dependencies in a scratch venv and pin what it installs.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

demo: $(STAMP)
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py demo

# The web app, its worker and beat, on the same embedded defaults as the demo: http://127.0.0.1:8000/
serve: $(STAMP)
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/canonical.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/append.py
	$(BIN)/python bench/sequencer.py
	$(BIN)/python bench/compression.py
	$(BIN)/python bench/checkpoint.py
	$(BIN)/python bench/archive.py
	$(BIN)/python bench/verify_incremental.py
	$(BIN)/python bench/evidence.py
	$(BIN)/python bench/export_memory.py
	$(BIN)/python bench/export_memory.py --decisions
	$(BIN)/python bench/witness.py
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/window_memory.py
	$(BIN)/python bench/combine_memory.py
	$(BIN)/python bench/part_memory.py
	$(BIN)/python bench/category_memory.py
	$(BIN)/python bench/rollback.py
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/uncertainty.py
	$(BIN)/python bench/ranking.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/ui_models.py
	$(BIN)/python bench/load.py
	@if [ -n "$$NANNYML_PYTHON" ]; then $(BIN)/python bench/estimation.py; \
	else echo "bench/estimation.py skipped: set NANNYML_PYTHON (see its docstring)"; fi
