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

# The dashboard's browser tests need Debian's chromium: installed when missing (best effort).
test: $(STAMP) codegen-check lint
	-.ci/browser-tools
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

# Grey against FastAPI + Celery (SQLAlchemy result backend) on the same Redis and database
# engine, same worker count, same load tool (bench/peers); SQLite and PostgreSQL.
.PHONY: bench-peers
bench-peers: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.peers

# Every API read against stores of 10^4 / 10^5 / 10^6 tasks on SQLite and PostgreSQL (issue #14):
# filled once under out/bench/scale and in grey_bench_scale_* databases, reused (SCALE_ARGS=--rebuild).
.PHONY: bench-scale
bench-scale: $(STAMP)
	$(PY) -m bench.scale $(SCALE_ARGS)

# The dashboard's first paint in headless Chromium on stores of 10^4 and 10^6 tasks (bench.scale's,
# filled once under out/bench/scale), and the telemetry subscriptions one open page costs.
.PHONY: bench-dashboard
bench-dashboard: $(STAMP)
	-.ci/browser-tools
	$(PY) -m bench.dashboard $(DASHBOARD_ARGS)

bench-sim: $(STAMP)
	$(PY) -m bench.sim

# gswarm: warm-hit rate of placement-aware routing (LFU vs LRU vs Belady) on Zipf traces;
# parameters printed; plot in out/bench/routing.png.
.PHONY: bench-routing
bench-routing: $(STAMP)
	$(PY) -m bench.routing

# gswarm: cold start of a >= 1 GiB checkpoint disk -> DRAM against bytes / the disk's cold
# read bandwidth, measured in rounds beside it (the GPU leg runs only where there is a GPU);
# plot in out/bench/coldstart.png.
.PHONY: bench-coldstart
bench-coldstart: $(STAMP)
	$(PY) -m bench.coldstart

# A real cluster (gateway + grey worker processes on its own Redis and PostgreSQL database)
# driven headless by Locust at 50/85/100 % of its measured capacity; figures, the Locust
# report and plots under out/loadtest/ (`grey loadtest --help`; LOADTEST_ARGS for more).
loadtest: $(STAMP)
	$(PY) -m runtime.cli loadtest $(LOADTEST_ARGS)

# A worker's node process killed (SIGKILL) 15 s into each of three 45 s levels; the recovery
# measured, and predicted by the twin told the same event (out/loadtest/kill/recovery-*.png).
.PHONY: loadtest-kill
loadtest-kill: $(STAMP)
	$(PY) -m runtime.cli loadtest --levels 12,12,12 --seconds 45 --kill-worker-at 15 --out out/loadtest/kill

# `grey plan` on the calibrated twin (`make calibrate` first) names the fewest nodes meeting
# the objective at 30 tasks/s; that cluster and one node fewer are load-tested here.
.PHONY: plan-verify
plan-verify: $(STAMP)
	$(PY) -m runtime.cli plan-verify --calibration out/calibration --rate 30 \
		--slo 'p95 wait <= 0.5s for normal' --out out/plan-verify

# The twin calibrated on one load run and validated on another (run `make loadtest` twice with
# --seed 1 / --seed 2 first): error per figure, plots in out/calibration/.
.PHONY: calibrate
calibrate: $(STAMP)
	$(PY) -m runtime.cli calibrate --run out/loadtest/seed1 --validate out/loadtest/seed2 --out out/calibration

# Locust's web UI against a `grey serve` you started yourself.
.PHONY: loadtest-ui
loadtest-ui: $(STAMP)
	$(PY) -m locust -f loadtest/locustfile.py --host http://127.0.0.1:8080

# gswarm profiler: achieved sampling period vs the asked one (SQLite; a store URL as argument).
.PHONY: bench-profiler
bench-profiler: $(STAMP)
	$(PY) -m bench.profiler

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
