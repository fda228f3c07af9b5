# The two commands of the README: `make demo` (set up, then run the main job on the embedded
# default) and `make test` (set up, then lint and run the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

demo: setup
	$(BIN)/xueshi demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2 --durations=25

bench: setup
	$(BIN)/python -m benchmarks.run
