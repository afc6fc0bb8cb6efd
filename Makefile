# Every target creates the virtualenv from pyproject.toml on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast codegen codegen-check lint bench-gateway bench-runtime bench-sim clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m runtime.cli serve

test: $(STAMP) codegen-check
	$(PY) -m ruff check .
	$(PY) -m pytest -q

codegen: $(STAMP)
	$(PY) -m codegen

codegen-check: $(STAMP)
	$(PY) -m codegen --check

lint: $(STAMP)
	$(PY) -m ruff check .

bench-gateway: $(STAMP)
	$(PY) -m bench.gateway

bench-runtime: $(STAMP)
	$(PY) -m bench.runtime

bench-sim: $(STAMP)
	$(PY) -m bench.sim

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
