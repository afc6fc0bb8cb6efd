# Every target creates the virtualenv from pyproject.toml on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test codegen codegen-check lint bench-gateway bench-runtime bench-runtime-breakdown bench-sim loadtest chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Container tasks need podman, runc and busybox-static: installed when missing (best effort).
run: $(STAMP)
	-.ci/container-tools
	$(PY) -m runtime.cli serve

test: $(STAMP) codegen-check lint
	$(PY) -m pytest -q

codegen: $(STAMP)
	$(PY) -m codegen

codegen-check: $(STAMP)
	$(PY) -m codegen --check

# Style, the layer contract (pyproject's [tool.importlinter]) and the type checker.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy

bench-gateway: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.gateway

bench-runtime: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.runtime

bench-runtime-breakdown: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.runtime_breakdown

bench-sim: $(STAMP)
	$(PY) -m bench.sim

loadtest: $(STAMP)
	$(PY) -m locust -f loadtest/locustfile.py --host http://127.0.0.1:8080

# 500 Locust users on CloudAI's /ws/telemetry for 30 s against a grey serve of its own: the
# server's RSS and fds before/during/after, message ages; plot in out/loadtest/websocket.png.
.PHONY: loadtest-ws
loadtest-ws: $(STAMP)
	$(PY) -m loadtest.websocket --locust --clients 500 --seconds 30

# Faults injected into a real cluster (own redis-server, a PostgreSQL database of its own on
# 127.0.0.1:5432, grey serve + grey worker); CHAOS_SIZE=small is what the test suite runs.
CHAOS_SIZE ?= full
chaos: $(STAMP)
	$(PY) -m loadtest.chaos --size $(CHAOS_SIZE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
