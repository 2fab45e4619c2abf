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
AGW := target/debug/agw

.PHONY: help setup build worker sim simulator agw dev test test-unit test-e2e lint lint-shell fmt size clean bench-analytics

help:
	@echo "make dev    run the Worker locally against the AI Gateway simulator (or Cloudflare)"
	@echo "make simulator   the AI Gateway simulator alone, for a plain 'npx wrangler dev' beside it"
	@echo "make test   run every test (installs what it needs first)"
	@echo "make build  build the Worker (build/index.js, build/index_bg.wasm) and the simulator"
	@echo "make lint   bash -n + shellcheck on every script, cargo fmt --check, clippy -D warnings"
	@echo "make size   size of build/index_bg.wasm (gzipped) and its largest contributors (information)"
	@echo "make deploy-check   wrangler deploy --dry-run of the Worker and the example, sizes vs upload limits"
	@echo "make bench  the Worker vs a JS passthrough floor in workerd, under wrk (figures, not tests)"
	@echo "make fuzz   property tests and the engine simulation with many more cases (minutes)"

# The toolchain, and .dev.vars for `wrangler dev` (from .dev.vars.example: the simulator's
# settings) when there is none: after it, `npx wrangler dev` runs as typed.
setup:
	@scripts/setup.sh all
	@[ -f .dev.vars ] || { cp .dev.vars.example .dev.vars && echo "[setup] wrote .dev.vars from .dev.vars.example"; }

build: setup worker sim

# The Worker: an incremental target (wrangler's [build] command calls it too). Several `wrangler
# dev` may start at once (the tests do): a lock lets one build while the others wait, then find
# the build up to date. (No flock, as on macOS: build unlocked.)
worker:
	@mkdir -p build
	@if command -v flock >/dev/null; then flock build/.lock $(MAKE) -s build/index.js; \
	else $(MAKE) -s build/index.js; fi

WORKER_INPUTS := $(WORKER_SOURCES) js/entry.mjs js/limiter.mjs js/relay.mjs js/upstream.mjs tools/wasm-size.mjs

# worker-build's output goes to build/generated/; build/index.js is js/entry.mjs bundled around
# it (requests reach the generated handler through a plain object, not worker-build's
# per-request Proxies: see js/entry.mjs). worker-build keeps the wasm name section (it runs
# wasm-opt with --debuginfo): the shipped build/index_bg.wasm is stripped of it, and
# build/index_bg.unstripped.wasm keeps it for reading traces (`node tools/wasm-size.mjs names
# build/index_bg.unstripped.wasm N` names a `wasm-function[N]`) and for profiles (bench/run.py
# --profile loads it).
build/index.js: $(WORKER_INPUTS)
	@command -v worker-build >/dev/null || { echo "worker-build is missing: run 'make setup'" >&2; exit 1; }
	worker-build --release --out-dir build/generated .
	@mv build/generated/index_bg.wasm build/index_bg.unstripped.wasm
	@node tools/wasm-size.mjs strip build/index_bg.unstripped.wasm build/index_bg.wasm
	@esbuild js/entry.mjs --bundle --format=esm --minify --log-level=warning \
		'--external:*.wasm' '--external:cloudflare:*' --alias:generated-worker=$(CURDIR)/build/generated/index.js \
		--outfile=build/index.js

sim: $(SIM)
$(SIM): $(shell find crates/aig-sim -name '*.rs') crates/aig-sim/Cargo.toml Cargo.lock
	cargo build --quiet -p aig-sim
	@touch $(SIM)

# The operator's CLI (`agw setup`, `agw doctor`): native, never part of the Worker.
agw: $(AGW)
$(AGW): $(shell find crates/agw crates/core/src -name '*.rs') crates/agw/Cargo.toml Cargo.lock gateway.config.json
	cargo build --quiet -p agw
	@touch $(AGW)

dev: build
	@scripts/dev.sh

# The simulator alone (on .dev.vars' AI_GATEWAY_URL), for a plain `npx wrangler dev` beside it.
simulator: sim
	@scripts/dev.sh simulator

# Every phase in turn (build, deploy-check, lint, test-unit, test-e2e), and how long each took.
test:
	@scripts/test.sh

# Every test of the core, the simulator and agw. The engine's random simulation runs on its own
# first so that it can say how many schedules it ran (SIM_SCHEDULES, default 5000; SIM_SEED=N
# replays one); then every other test file of the core, whatever its name.
test-unit:
	cargo test --quiet -p gateway-core --test simulation random_fault_schedules -- --nocapture
	cargo test --quiet -p gateway-core --lib --tests -- --skip random_fault_schedules_keep_every_invariant
	cargo test --quiet -p aig-sim -p agw

test-e2e: build agw
	.venv/bin/python -m pytest -q --durations=15 tests/e2e

# `wrangler deploy` up to the upload, offline: runs the [build] step, validates the config
# (bindings, Durable Object migrations, crons) and bundles what it would upload; then that
# bundle's size beside Workers' upload limits, which apply compressed (measured as wrangler
# measures it: the modules gzipped together). The example agent Worker too, so that it cannot
# rot. (The migrations of a deployment moving from two Workers to one, in docs/operations.md,
# are dry-run by the docs' tests.)
.PHONY: deploy-check
deploy-check: export DEPLOY_SIZES = $(DEPLOY_SIZES_JS)
deploy-check:
	@scripts/setup.sh build
	@rm -rf build/deploy build/deploy-agent-worker
	npx wrangler deploy --dry-run --outdir build/deploy
	npx wrangler deploy --dry-run --outdir $(CURDIR)/build/deploy-agent-worker --config examples/agent-worker/wrangler.toml
	@node -e "$$DEPLOY_SIZES" build/deploy build/deploy-agent-worker

define DEPLOY_SIZES_JS
const fs = require("fs"), path = require("path"), zlib = require("zlib");
const MIB = 1024 * 1024, FREE = 3 * MIB, PAID = 10 * MIB;
const kib = (n) => (n / 1024).toFixed(1) + " KiB";
const gzip = (buffers) => zlib.gzipSync(Buffer.concat(buffers)).length;
let fail = false;
for (const dir of process.argv.slice(1)) {
  // The modules (not source maps), the entry point last as wrangler does.
  const names = fs.readdirSync(dir).filter((f) => !f.endsWith(".map") && f !== "README.md")
    .sort((a, b) => (a === "index.js") - (b === "index.js") || a.localeCompare(b));
  const files = names.map((f) => fs.readFileSync(path.join(dir, f)));
  const size = files.reduce((n, f) => n + f.length, 0), gz = gzip(files);
  console.log(dir + ": " + kib(size) + ", " + kib(gz) + " gzipped; Workers' upload limit (gzipped): 3 MiB free (" +
    Math.round((gz * 100) / FREE) + "% used), 10 MiB paid (" + Math.round((gz * 100) / PAID) + "%)");
  names.forEach((name, i) => {
    if (name.endsWith(".wasm")) console.log("  " + name.replace(/^[0-9a-f]+-/, "") + ": " + kib(files[i].length) + ", " + kib(gzip([files[i]])) + " gzipped");
  });
  if (gz > PAID) { console.error(dir + ": over every plan's upload limit"); fail = true; }
  else if (gz > FREE) console.error(dir + ": over the free plan's upload limit (deploys on a paid plan only)");
}
process.exit(fail ? 1 : 0);
endef

# Every shell script in the repository must parse (`bash -n`) and pass shellcheck: a quote inside
# ${x:-...} once broke `make dev` while every Rust test passed.
SHELL_SCRIPTS = $(shell git ls-files -co --exclude-standard -- '*.sh' .ci/run 'scripts/*' 'examples/*.sh' 2>/dev/null | sort -u)

lint: lint-shell
	cargo fmt --all -- --check
	cargo clippy --quiet -p gateway-core -p aig-sim -p agw --all-targets -- -D warnings
	cargo clippy --quiet -p agent-gateway --target wasm32-unknown-unknown -- -D warnings

lint-shell:
	@command -v shellcheck >/dev/null || scripts/setup.sh lint
	@for f in $(SHELL_SCRIPTS); do [ -f "$$f" ] || continue; bash -n "$$f" || exit 1; done
	shellcheck $(SHELL_SCRIPTS)

fmt:
	cargo fmt --all

# /analytics for 1k, 10k and 100k logs: cold, with rollups, cached; peak memory. Not in `make test`.
bench-analytics: build
	cargo build --quiet --release -p aig-sim
	.venv/bin/python tests/bench/analytics_bench.py

# The built Worker in `workerd serve` against a minimal JS passthrough Worker (the floor), both
# calling the simulator with a fixed latency, under wrk: prints the table, writes
# bench/results/latest.json and compares with the previous run. Not in `make test`.
# Options: make bench BENCH_ARGS="--duration 10 --rounds 3"; see python3 bench/run.py --help.
.PHONY: bench bench-limiter fuzz
bench: build
	@command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get update -qq && apt-get install -y -qq wrk; }
	cargo build --quiet --release -p aig-sim
	python3 bench/run.py $(BENCH_ARGS)

# How many reserve+settle pairs and lease syncs per second one provider's limiter object
# sustains (the Worker's own Durable Object in workerd serve, driven by bench/limiter-driver.js).
bench-limiter: build
	@command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get update -qq && apt-get install -y -qq wrk; }
	cargo build --quiet --release -p aig-sim
	python3 bench/run.py --limiter $(BENCH_ARGS)

# The property tests of every parser of untrusted bytes (crates/core/tests/properties) with far
# more cases than `make test` runs (PROPTEST_CASES, default 10000 per property), and the engine's
# simulation with 200,000 fault schedules (SIM_SCHEDULES), in release: minutes.
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-10000} cargo test --quiet --release -p gateway-core --test properties
	SIM_SCHEDULES=$${SIM_SCHEDULES:-200000} cargo test --quiet --release -p gateway-core --test simulation -- --nocapture

# The shipped wasm's size (raw, gzipped) and its sections; by the names of the unstripped copy,
# the crates and the functions its code comes from. For information: cold start is measured by
# `make bench`.
size: worker
	@node tools/wasm-size.mjs report build/index_bg.wasm build/index_bg.unstripped.wasm 15

clean:
	rm -rf build target .wrangler
