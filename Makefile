# podinit — `make demo` runs the main job, `make test` passes the tests. Both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
BUILD  ?= build
PYTEST := $(PY) -m pytest -q

# What the tests use from Debian: the static and arm64 init builds and runs, valgrind, a real
# OCI runtime and rootfs, a real registry with htpasswd, the benchmark's anchor inits, and
# promtool (package prometheus) for the chart's alert rules.
SYSTEM_PACKAGES := musl-tools qemu-user-static valgrind runc busybox-static docker-registry \
                   apache2-utils tini dumb-init catatonit hyperfine strace \
                   buildah mmdebstrap containernetworking-plugins iptables iproute2 prometheus ipset

.PHONY: help venv system-packages lint test test-py e2e-tools e2e e2e-node cluster cluster-down images lock demo bench bench-webhook bench-registry bench-runtime bench-cluster bench-cli bench-podwatch deploy-manifests mutation clean

help:
	@echo "make demo       - serve the webhook locally over TLS, mutate realistic pods, run the shell-wrapped example"
	@echo "make test       - set up the venv, build the init, lint, run every test (sanitizers and e2e included)"
	@echo "make e2e-tools  - build kube-apiserver, kube-controller-manager, etcd, helm (cached outside the repo)"
	@echo "make bench      - benchmarks, as ratios against baselines measured in the same run"
	@echo "make mutation   - mutation testing of the decision core on a copy (~15 min), score per file"
	@echo "make cluster    - a one-node cluster in the background (root); make cluster-down removes it"
	@echo "make images REGISTRY=host:port - build both images from the Dockerfile and push them"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Installs only what is missing, and only as root (CI and this project's machines are root).
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "as root, install the Debian packages:" $$missing; exit 0; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $$missing >/dev/null

lint: venv
	$(VENV)/bin/ruff check webhook tests e2e bench demo scripts
	$(VENV)/bin/ruff format --check webhook tests e2e bench demo scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

include init/init.mk

# Everything but the node (its own session: a cluster idling under the other suites would
# disturb their timing) and the sanitizer re-runs of tests/init, which have their own targets.
# Branch coverage of webhook/, `podinit serve` subprocesses included ([tool.coverage.run]);
# the floor is under what a clean clone measured (94.3% on 2026-12-07, after the pod watch and
# reconciler of issue 20: the leader's failure paths, lease loss, watch errors, refused and
# forbidden calls, run on the node, which is not measured) by enough for a few
# timing-dependent branches to go either way. It was 96.2% before: the aim is back over 95%
# with tests of those paths.
COVERAGE := --cov=webhook --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=93.5
test-py: venv init
	$(PYTEST) tests --ignore=tests/node $(COVERAGE)

# The version matrix and the oldest release's node and cluster (half of a cold tools build)
# build in the background, at a lower priority, while the other Python tests run (they mostly
# wait on servers); then their tests run, adding to the same coverage; then the node and the
# sanitizers.
COVERAGE_PART := --cov=webhook --cov-branch --cov-report=
test: system-packages venv init
	bash e2e/tools.sh --base
	$(MAKE) --no-print-directory lint
	@mkdir -p $(BUILD)
	bash e2e/tools.sh --matrix >$(BUILD)/matrix-tools.log 2>&1 & matrix=$$!; \
	$(PYTEST) tests --ignore=tests/node --ignore=tests/e2e/versions $(COVERAGE_PART); \
	status=$$?; wait $$matrix || { cat $(BUILD)/matrix-tools.log; exit 1; }; \
	cat $(BUILD)/matrix-tools.log; exit $$status
	$(PYTEST) tests/e2e/versions $(COVERAGE) --cov-append
	$(MAKE) --no-print-directory e2e-node test-init-sanitizers

e2e-tools:
	bash e2e/tools.sh

e2e: venv init e2e-tools
	$(PYTEST) tests/e2e

# The user's journey on a real node (images from the Dockerfile, helm, kubelet, containerd).
e2e-node: venv init e2e-tools
	$(PYTEST) tests/node

# kubeconfig, registry HOST:PORT and its CA land in build/cluster/; both are idempotent.
cluster: venv e2e-tools
	$(PY) -m e2e.node up

cluster-down: venv
	$(PY) -m e2e.node down

# Build both images from the Dockerfile with buildah and push them: make images REGISTRY=host:port
# [BASE_IMAGE=python:3.11-slim-bookworm] [CERT_DIR=dir-with-ca.crt]
images: venv
	@test -n "$(REGISTRY)" || { echo "usage: make images REGISTRY=host:port"; exit 2; }
	bash e2e/tools.sh --oras
	$(PY) -m e2e.images --registry $(REGISTRY) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) \
		$(if $(CERT_DIR),--cert-dir $(CERT_DIR))

# Re-pin the images' Python packages (requirements/*.lock) after changing a dependency.
lock: venv
	$(VENV)/bin/uv pip compile pyproject.toml requirements/webhook-build.in --generate-hashes \
		--universal --python-version 3.11 --custom-compile-command "make lock" -q \
		-o requirements/webhook.lock
	$(VENV)/bin/uv pip compile requirements/init-build.in --generate-hashes --universal \
		--python-version 3.11 --custom-compile-command "make lock" -q -o requirements/init-build.lock

# The runc part needs the static init, root, runc and busybox-static; without them the demo
# says what it skipped and why, so a fresh machine runs it as it is.
demo: venv
	@if command -v musl-gcc >/dev/null; then $(MAKE) --no-print-directory $(BUILD)/podinit; fi
	$(PY) -m demo

bench: bench-init bench-registry bench-webhook bench-runtime bench-cluster bench-cli bench-podwatch

# podinit /mutate against a FastAPI no-op on the same uvicorn/TLS stack; records the run in
# docs/webhook-bench-runs.jsonl, rewrites "## Webhook" and README's webhook row from the last runs.
# Lighter: make bench-webhook BENCH_WEBHOOK_ARGS="--rounds 3 --duration 3 --no-uvloop"
BENCH_WEBHOOK_ARGS ?=
bench-webhook: venv
	$(PY) bench/webhook/bench_webhook.py --write-doc docs/performance.md --readme README.md \
		$(BENCH_WEBHOOK_ARGS)

# On the one-node cluster (root): pod start and stop, unmutated vs wrapped; rewrites "## Cluster"
# (BENCH_CLUSTER_ARGS="--kubelet-feature-gate EventedPLEG=true" writes a section of its own)
BENCH_CLUSTER_ARGS ?=
bench-cluster: venv e2e-tools
	$(PY) bench/cluster/bench_cluster.py --write-doc docs/performance.md $(BENCH_CLUSTER_ARGS)

# podinit inject on argo-cd's 1.9 MB install.yaml: libyaml vs pure-Python YAML; rewrites "## CLI"
bench-cli: venv
	$(PY) bench/cli/bench_inject.py --write-doc docs/performance.md

# The pod watch on 100,000 pods of a real apiserver: memory kept vs a metadata cache of every
# pod; rewrites "## Pod watch" (lighter: BENCH_PODWATCH_ARGS="--pods 20000")
BENCH_PODWATCH_ARGS ?=
bench-podwatch: venv e2e-tools
	$(PY) bench/podwatch/bench_podwatch.py --write-doc docs/performance.md $(BENCH_PODWATCH_ARGS)

bench-registry: venv
	$(PY) bench/registry/bench_resolver.py

# runc's stop time, unmutated vs mutated; rewrites the "## Runtime" section of docs/performance.md
bench-runtime: venv $(BUILD)/podinit
	$(PY) bench/runtime/bench_runtime.py --init $(BUILD)/podinit --runs 9 --write-doc docs/performance.md

# Mutation testing of the decision core ([tool.mutmut], docs/mutation.md): mutmut runs on a copy
# of the checkout (tracked and untracked files, in MUTATION_DIR), so the working tree others run
# tests from is never touched; then the score per file, equivalent mutants counted apart.
# Not part of `make test`: about 15 min with 2 jobs. One module: MUTANTS='webhook.core.layout.*';
# other code: MUTATE='["webhook/server/review.py"]' MUTATION_TESTS='["tests/server"]'.
MUTATION_DIR  ?= $(BUILD)/mutation
MUTATION_JOBS ?= 2
MUTANTS       ?=
# A mutant that grows a list forever eats ~100 MB/s until its CPU limit (minutes): each
# process gets at most this much address space, so it fails with MemoryError (killed) first.
MUTATION_MEMORY_KB ?= 3000000
# Every test covering a mutant runs once per mutant: the property tests draw a third of their
# examples (tests/scale.py), and a test past 30 s is a mutant that loops (tests/conftest.py).
MUTATION_TEST_SCALE ?= 0.34
mutation: venv
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C $(MUTATION_DIR) -xf -
	$(if $(MUTATE),sed -i 's|^only_mutate = .*|only_mutate = $(MUTATE)|' $(MUTATION_DIR)/pyproject.toml)
	$(if $(MUTATION_TESTS),sed -i 's|^pytest_add_cli_args_test_selection = .*|pytest_add_cli_args_test_selection = $(MUTATION_TESTS)|' $(MUTATION_DIR)/pyproject.toml)
	cd $(MUTATION_DIR) && ulimit -v $(MUTATION_MEMORY_KB) && PODINIT_TEST_SCALE=$(MUTATION_TEST_SCALE) \
		$(abspath $(VENV))/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	cd $(MUTATION_DIR) && $(abspath $(PY)) -m tests.core.mutation_report --doc docs/mutation.md \
		| tee mutation-report.txt

# Regenerate deploy/ and the chart's values schema after changing the chart or webhook/config.py.
deploy-manifests: venv
	$(PY) scripts/chart/generate.py

clean:
	rm -rf $(BUILD)
