# agent-gateway — the two commands a new user needs:
#   make dev    run the Worker locally (wrangler dev) against the bundled AI Gateway simulator,
#               or against Cloudflare when .dev.vars holds real ids and secrets
#   make test   every test: unit (native), lint, end-to-end (simulator + Worker + OpenAI SDK)
# Both install what they need first (scripts/setup.sh).

SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export WRANGLER_SEND_METRICS := false

# worker-build finds its helpers here instead of downloading them.
export WASM_BINDGEN_BIN := $(HOME)/.cargo/bin/wasm-bindgen
export WASM_OPT_BIN := $(CURDIR)/node_modules/.bin/wasm-opt
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild

WORKER_SOURCES := $(shell find src crates/core/src -name '*.rs') \
	Cargo.toml Cargo.lock crates/core/Cargo.toml gateway.config.json
SIM := target/debug/aig-sim

.PHONY: help setup build worker sim dev test test-unit test-e2e lint fmt size clean

help:
	@echo "make dev    run the Worker locally against the AI Gateway simulator (or Cloudflare)"
	@echo "make test   run every test (installs what it needs first)"
	@echo "make build  build the Worker (build/index.js, build/index_bg.wasm) and the simulator"
	@echo "make lint   cargo fmt --check and clippy -D warnings"
	@echo "make size   gzip size of build/index_bg.wasm"

setup:
	@scripts/setup.sh all

build: setup worker sim

# The Worker: an incremental target (wrangler's [build] command calls it too). Several `wrangler
# dev` may start at once (the tests do): a lock lets one build while the others wait, then find
# the build up to date. (No flock, as on macOS: build unlocked.)
worker:
	@mkdir -p build
	@if command -v flock >/dev/null; then flock build/.lock $(MAKE) -s build/index.js; \
	else $(MAKE) -s build/index.js; fi

build/index.js: $(WORKER_SOURCES)
	@command -v worker-build >/dev/null || { echo "worker-build is missing: run 'make setup'" >&2; exit 1; }
	worker-build --release
	@touch build/index.js

sim: $(SIM)
$(SIM): $(shell find crates/aig-sim -name '*.rs') crates/aig-sim/Cargo.toml Cargo.lock
	cargo build --quiet -p aig-sim
	@touch $(SIM)

dev: build
	@scripts/dev.sh

test: build lint test-unit test-e2e

test-unit:
	cargo test --quiet -p gateway-core -p aig-sim

test-e2e: build
	.venv/bin/python -m pytest -q tests/e2e

lint:
	cargo fmt --all -- --check
	cargo clippy --quiet -p gateway-core -p aig-sim --all-targets -- -D warnings
	cargo clippy --quiet -p agent-gateway --target wasm32-unknown-unknown -- -D warnings

fmt:
	cargo fmt --all

size: worker
	@printf 'build/index_bg.wasm: %s bytes, %s bytes gzipped\n' \
		"$$(stat -c %s build/index_bg.wasm)" "$$(gzip -9 -c build/index_bg.wasm | wc -c)"

clean:
	rm -rf build target .wrangler
