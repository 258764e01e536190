# Quick start:  make repro   (set up + run the pipeline)      make test   (set up + run the tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OTHER_PYTHONS := 3.12 3.13
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test test-all mutate lint bench clean

$(BIN)/dvc: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(BIN)/dvc

repro: setup
	dvc repro
	dvc metrics show metrics.json

test: setup
	pytest

# The whole suite on this Python, then on every other Python the project supports that this machine has: the
# core suite (no dvc end-to-end runs) and a fresh copy's `dvc repro`, which must reproduce the committed dvc.lock.
# MNIST_CNN_REQUIRE_ALL_PYTHONS=1 (CI) turns a missing Python into a failure. Those venvs hold `.[dev]` only, so
# their PyTorch tests skip, also where MNIST_CNN_REQUIRE_TORCH=1 (CI's, for this Python's run) is set.
test-all: test
	@set -e; for v in $(OTHER_PYTHONS); do \
	  py=$$(tools/find-python $$v) || { \
	    if [ -n "$${MNIST_CNN_REQUIRE_ALL_PYTHONS:-}" ]; then echo "test-all: Python $$v not found" >&2; exit 1; fi; \
	    echo "test-all: Python $$v not found on this machine; not tested"; continue; }; \
	  venv=.venv-$$v; \
	  if [ ! -x $$venv/bin/pytest ] || [ pyproject.toml -nt $$venv/bin/pytest ] || [ constraints.txt -nt $$venv/bin/pytest ]; then \
	    $$py -m venv $$venv && $$venv/bin/pip install --quiet --upgrade pip && \
	    $$venv/bin/pip install --quiet -c constraints.txt -e '.[dev]' && touch $$venv/bin/pytest; \
	  fi; \
	  echo "test-all: core suite on Python $$v ($$py)"; \
	  MNIST_CNN_REQUIRE_TORCH= PATH=$(CURDIR)/$$venv/bin:$$PATH $$venv/bin/pytest -q -m 'not slow' -p no:cacheprovider; \
	  MNIST_CNN_REQUIRE_TORCH= PATH=$(CURDIR)/$$venv/bin:$$PATH $$venv/bin/pytest -q -p no:cacheprovider \
	    'tests/test_reproducible.py::test_fresh_copy_reproduces_the_committed_lock[autodetect]'; \
	done

# Plausible bugs put into a copy of the project one at a time; each must make its tests fail.
mutate: setup
	python tools/mutate.py

lint: setup
	ruff check . && ruff format --check .

bench: setup
	python -m benchmarks

clean:
	rm -rf $(VENV) .venv-3.* dvc_plots .pytest_cache
