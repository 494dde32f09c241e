# Turing: two commands matter — `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR := examples/talent

.PHONY: venv demo test lint fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,all]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	cd $(DEMO_DIR) && ../../$(BIN)/python -m talent.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples benchmarks
	$(BIN)/ruff check --fix src tests examples benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/validation.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
