# Revoke: `make run` starts revoked on its embedded redis-server, `make test` runs every test,
# `make bench` prints the benchmark tables. Each installs what is missing first (Debian/Ubuntu).

SWIFT ?= swift
# Build configuration of `make run` (release: the service as it would be deployed).
CONFIGURATION ?= release
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The tests' Python tools (PyJWT for the interop test) live in their own virtual environment.
PYENV := .build/pyenv
PYTHON := $(abspath $(PYENV))/bin/python

.PHONY: deps testdeps pydeps benchdeps run test bench soak fuzz build clean

# Installs the system packages revoked and its tests need, only when one is missing.
deps:
	@missing=""; \
	pkg-config --exists hiredis 2>/dev/null || missing="$$missing libhiredis-dev pkg-config"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v redis-benchmark >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	python3 -c 'import ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Creates $(PYENV) with Tests/requirements.txt and the Python client (editable, with what its
# tests and integrations need), only when something is missing.
pydeps: deps
	@$(PYTHON) -c 'import jwt, cryptography, compose, schemathesis' >/dev/null 2>&1 || { \
		python3 -m venv $(PYENV) && \
		$(PYTHON) -m pip install -q --disable-pip-version-check -r Tests/requirements.txt; }
	@$(PYTHON) -c 'import revoke_client, httpx, xxhash, flask_jwt_extended, fastapi, hypothesis, pytest, authlib, requests' >/dev/null 2>&1 || \
		$(PYTHON) -m pip install -q --disable-pip-version-check -e './clients/python[test]'

build: deps
	$(SWIFT) build -c $(CONFIGURATION) --product revoked

# Starts revoked on 127.0.0.1:8080 (REVOKE_* variables apply), owning a local redis-server
# with its data under ./.revoke-data. Ctrl-C stops both.
run: build
	$(SWIFT) run -c $(CONFIGURATION) --skip-build revoked

# The gateways the recipes in config/gateways are tested with (nginx and Caddy, Debian's
# packages), installed only when missing.
testdeps: deps
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v caddy >/dev/null 2>&1 || missing="$$missing caddy"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The Swift tests, then the Python client's against the revoked just built. The README's
# examples build a package of their own (a few minutes of compiling): alone, after the others,
# so that they do not compete with tests for the cores.
test: deps testdeps pydeps
	$(SWIFT) build --build-tests
	$(SWIFT) build --product revoked
	REVOKE_TEST_PYTHON=$(PYTHON) $(SWIFT) test --skip-build --skip ReadmeTests
	$(SWIFT) test --skip-build --filter ReadmeTests
	REVOKED_BINARY=$(abspath .build/debug/revoked) $(PYTHON) -m pytest -q -p no:cacheprovider clients/python/tests

# The benchmarks also need wrk and nginx (the HTTP ceiling), installed only when missing, and
# openssl (HABenchmark's TLS certificates), which deps checks.
benchdeps: deps
	@missing=""; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: benchdeps pydeps
	@$(PYTHON) -c 'import redis, hiredis' >/dev/null 2>&1 || $(PYTHON) -m pip install -q --disable-pip-version-check 'redis>=5' 'hiredis>=3'
	$(SWIFT) build -c release --product RedisBenchmark
	$(SWIFT) build -c release --product HTTPBenchmark
	$(SWIFT) build -c release --product GatewayBenchmark
	$(SWIFT) build -c release --product HummingbirdFloor
	$(SWIFT) build -c release --product ClientBenchmark
	$(SWIFT) build -c release --product HABenchmark
	$(SWIFT) build -c release --product revoked
	$(SWIFT) run -c release --skip-build RedisBenchmark
	$(SWIFT) run -c release --skip-build HTTPBenchmark
	$(SWIFT) run -c release --skip-build GatewayBenchmark
	$(SWIFT) run -c release --skip-build ClientBenchmark
	$(SWIFT) run -c release --skip-build HABenchmark
	$(PYTHON) clients/python/bench/bench.py --revoked .build/release/revoked

# revoked at 80% of the most it takes (measured first, in the same run), with steady revocations
# and 100 open event streams, for SOAK_SECONDS (default 600): per-minute p99, errors, memory.
# Fails when any request failed or a stream was dropped.
SOAK_SECONDS ?= 600
soak: benchdeps
	$(SWIFT) build -c release --product SoakBenchmark
	$(SWIFT) build -c release --product revoked
	SOAK_SECONDS=$(SOAK_SECONDS) $(SWIFT) run -c release --skip-build SoakBenchmark

# libFuzzer on every parser that takes outside bytes, FUZZ_SECONDS each (default 60), from the
# seeds in Fuzz/corpus; what it learns stays in .build-fuzz/corpus, a crash in .build-fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := json jws snapshot sse resp redis-url cutoff-claims
fuzz: deps
	REVOKE_FUZZ=1 $(SWIFT) build --scratch-path .build-fuzz --product RevokeFuzz -Xswiftc -sanitize=fuzzer,address
	@for target in $(FUZZ_TARGETS); do \
		mkdir -p .build-fuzz/corpus/$$target; \
		echo "== $$target"; \
		REVOKE_FUZZ_TARGET=$$target .build-fuzz/debug/RevokeFuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=.build-fuzz/crash-$$target- .build-fuzz/corpus/$$target Fuzz/corpus/$$target 2>&1 \
			| grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
			|| true; \
		if ls .build-fuzz/crash-$$target-* >/dev/null 2>&1; then echo "$$target: crash, see .build-fuzz/crash-$$target-*"; exit 1; fi; \
	done

clean:
	rm -rf .build .build-fuzz
