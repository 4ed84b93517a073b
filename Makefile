# The README's quick start: `make run` (the main job) and `make test` (the whole suite).
# Each sets up its own virtual environment on first use (and again when the deps change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run demo test lint bench clean

$(STAMP): pyproject.toml constraints/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints/dev.txt -e '.[dev]'
	touch $(STAMP)

# A whole sweep on the embedded SQLite default (regsweep.db here); again = resume/show.
run: $(STAMP)
	$(BIN)/regsweep run examples/digits.yaml --workers 2

demo: $(STAMP)
	$(BIN)/regsweep demo

# The docs site too: --strict fails on a broken link or anchor (no --quiet: it hides them).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/regularizers.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
