# Two entry points for a newcomer: `make demo` and `make test`. Both set up
# everything they need on a fresh Debian machine (system packages, a venv,
# the BPF objects).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup system bpf bpf-check lint test test-unit demo bench clean

setup: system $(STAMP)

system:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

bpf: setup
	@if [ -f bpf/Makefile ]; then $(MAKE) -s -C bpf; fi

# Fails when the shipped BPF objects are stale against their sources.
bpf-check: setup
	@if [ -f bpf/Makefile ]; then $(MAKE) -s -C bpf check; fi

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

test: setup bpf-check lint
	$(VENV)/bin/pytest -q tests

test-unit: setup
	$(VENV)/bin/pytest -q tests/unit tests/behaviour -m 'not kernel'

demo: setup bpf
	$(VENV)/bin/dataplane demo

# Benchmarks (not part of `make test`; about 45 minutes, needs root for the lab ones).
bench: setup bpf
	@scripts/setup-system.sh bench
	$(PY) bench/calc.py
	$(PY) bench/lab.py
	$(PY) bench/iptables_dispatch.py
	$(PY) bench/ebpf_services.py
	$(PY) bench/ebpf_paths.py
	$(PY) bench/ebpf_routes.py
	$(PY) bench/ebpf_policy.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
