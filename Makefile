# podinit — `make demo` runs the main job, `make test` passes the tests. Both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
BUILD  ?= build
# Built tools (helm, kube-apiserver, ...) are cached outside the repo, keyed by version.
TOOLS_CACHE ?= $(HOME)/.cache/podinit-tools

.PHONY: help venv lint test test-py demo bench clean

help:
	@echo "make demo   - serve the webhook locally, mutate realistic pods, run the shell-wrapped example"
	@echo "make test   - set up the venv, build the init, lint, run every test"
	@echo "make bench  - benchmarks (ratios against baselines measured in the same run)"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check webhook tests
	$(VENV)/bin/ruff format --check webhook tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

include init/init.mk

test-py: venv init
	$(PY) -m pytest -q tests

test: lint test-py test-init-sanitizers

bench: bench-init

clean:
	rm -rf $(BUILD)
