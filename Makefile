# Two commands set everything up on a fresh machine:
#   make demo   - install and run the main job on embedded defaults (local model, generated game,
#                 SQLite): 10 episodes whose score rises as memory fills
#   make test   - install and run the test suite
# llama-cpp-python builds from source once (~11 min on 2 cores); pip's wheel cache serves it after.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.jitrl-installed
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: install browser demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip wheel
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

browser: install  # Debian's chromium for the web tests (apt, only if missing)
	$(BIN)/jitrl setup browser

demo: install
	$(BIN)/jitrl run

test: install browser
	$(BIN)/python -m pytest

test-fast: install browser
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: install  # the quick ones; BENCHMARKS.md gives the commands of the long ones
	$(BIN)/python benchmarks/decision.py
	$(BIN)/python benchmarks/retrieval.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
