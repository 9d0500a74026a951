# The project's commands. `make demo` runs the platform with simulated homes;
# `make test` sets up, runs `make lint` and the whole test suite (CI runs it via .ci/run);
# `make unit` runs only the tests that need no daemons and no long simulations (about a
# minute of CPU on 2 cores: 1,373 tests; not yet the seconds issue #15 asks for).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ELDERCARE := $(VENV)/bin/eldercare
DEBS := mosquitto influxdb chromium nats-server
STAMP := $(VENV)/.installed

.PHONY: setup demo test unit lint bench clean services-up services-down

setup: $(STAMP)
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v influxd >/dev/null || missing="$$missing influxdb"; \
	command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || missing="$$missing nats-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi "wenquanyi\|noto.*cjk" || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# Debian's packages may start system-wide daemons; the project runs its own
	@# on free ports, so leave any system instance alone.
	@echo "setup ok"

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip 2>/dev/null
	@$(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import eldercare, paho.mqtt, fastapi, sqlalchemy" # fail here, not later
	@touch $(STAMP)

services-up: setup
	@$(ELDERCARE) services up

services-down:
	@$(ELDERCARE) services down

demo: setup
	@$(VENV)/bin/python -m eldercare_app.demo

# Static checks: style, formatting, the import layering (pyproject's import-linter
# contracts, see docs/architecture.md) and types (mypy --strict over every package and
# the tests: pyproject's [tool.mypy] files).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy --strict

# Two test processes (pytest-xdist), each file's tests in one of them (they share module
# fixtures); each process starts its own services on free ports. Most of the suite waits
# on daemons, browsers and wall-clock windows, which two processes overlap (5-7 min of
# pytest instead of 14 on a 2-core machine: BENCHMARKS.md, "Test suite time").
test: lint
	$(VENV)/bin/pytest -q -ra -n 2 --dist loadfile

# The fast tier: no daemons, no long simulations or `eldercare` subprocesses (marked
# `slow`), property tests on the small Hypothesis budget; `make test` runs all of it.
# Only tests/unit is collected: every test in integration/ and e2e/ is an integration test.
unit: setup
	$(VENV)/bin/pytest -q -m "not integration and not slow" --hypothesis-profile=fast tests/unit

bench: setup
	@echo "== ingest: MQTT → InfluxDB, msg/s with zero loss"
	@$(ELDERCARE) bench ingest
	@echo "== latency: device publish → alert stored / live stream / notification, under load"
	@$(ELDERCARE) bench latency
	@echo "== scale: homes one platform process follows in real time"
	@$(ELDERCARE) bench scale
	@echo "== cluster: roles in their own processes on NATS JetStream, 1/2/4 detector workers, faults"
	@$(ELDERCARE) bench cluster
	@echo "== worker-memory: a detector worker's memory per 1,000 homes after an hour of readings"
	@$(ELDERCARE) bench worker-memory
	@echo "== flood: one home floods; other homes' SOS latency and memory"
	@$(ELDERCARE) bench flood
	@echo "figures are recorded by hand in BENCHMARKS.md with the machine they ran on"

clean: services-down
	rm -rf .run .pytest_cache
