# Quick start:  make repro   (set up + run the pipeline)      make test   (set up + run the tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test lint bench clean

$(BIN)/dvc: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(BIN)/dvc

repro: setup
	dvc repro
	dvc metrics show

test: setup
	pytest

lint: setup
	ruff check . && ruff format --check .

bench: setup
	python -m benchmarks

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
