# hax_conn: the commands a user runs. Each does its own setup when needed (scripts/setup.sh is
# idempotent and fast when nothing changed).
VENV ?= .venv
export HAX_CONN_VENV := $(abspath $(VENV))
PY := $(HAX_CONN_VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-all bench lint clean help

help:
	@echo "make demo      plan a DNN pair, run one on the CPU, then the ROS 2 nodes with a live DNN swap"
	@echo "make test      the whole test suite (what CI runs)"
	@echo "make test-all  the test suite plus the long runs (every cut of every DNN)"
	@echo "make bench     benchmarks; results are written to docs/"
	@echo "make setup     create $(VENV) with ROS 2 Kilted wheels and build msg/ (done by the others)"

setup:
	@bash scripts/setup.sh

DEMO_PROFILE := profiles/cpu_alexnet_googlenet_resnet18_mobilenet_v1.json

demo: setup
	@$(HAX_CONN_VENV)/bin/hax-conn demo
	@echo
	@$(HAX_CONN_VENV)/bin/hax-conn run --profile $(DEMO_PROFILE) --dnns resnet18,mobilenet_v1 \
		--objective throughput --frames 30
	@echo
	@$(HAX_CONN_VENV)/bin/hax-conn ros-demo
	@echo
	@echo "The same on GPU hardware: the 12 DNNs profiled, planned and measured on an H200 split"
	@echo "into two partitions (our stand-in for a Jetson's GPU and DLA), where the plan gains and"
	@echo "where the predictions miss: docs/bench/emulated-soc-h200-runs-4-6.md"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup
	HAX_CONN_TEST_ALL=1 HAX_CONN_SPLIT_REPORT=docs/split-equivalence-all.json $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done

lint: setup
	$(PY) -m pytest test/project/test_lint.py

clean:
	rm -rf $(VENV) $(VENV).build $(VENV).logs build install log
