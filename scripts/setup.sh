#!/usr/bin/env bash
# Installs what building and testing need, on a fresh machine, and nothing that is already there.
# Idempotent: a second run only checks versions. Usage: scripts/setup.sh [all|build|python|browser|lint]
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

# The wasm-bindgen CLI must equal the wasm-bindgen library locked in Cargo.lock, byte for byte
# of version, or the generated glue does not match the module.
locked_version() { sed -n "/^name = \"$1\"\$/{n;s/^version = \"\(.*\)\"\$/\1/p;q}" Cargo.lock; }
WASM_BINDGEN_VERSION=$(locked_version wasm-bindgen)
WORKER_VERSION=$(locked_version worker)

cargo_install() { # name version binary [--locked]
  local name=$1 version=$2 bin=$3 locked=${4:-}
  if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -qw -- "$version"; then
    return
  fi
  log "installing $name $version (a few minutes, once per machine)"
  cargo install --quiet ${locked:+"$locked"} "$name" --version "$version"
}

rust_build_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  # worker-build is versioned with the worker crate it builds; its lock resolves on crates.io.
  cargo_install worker-build "$WORKER_VERSION" worker-build --locked
  # Not --locked: wasm-bindgen-cli's published lock names crate versions that crates.io no longer
  # serves (webpki-roots 1.0.11 among them), so a locked install fails; the CLI's own version is
  # pinned exactly, and cargo resolves its dependencies within their declared ranges.
  cargo_install wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
}

node_tools() {
  # wrangler 4.86 runs on Node 20; esbuild and binaryen's wasm-opt come from npm because
  # worker-build's own downloads (GitHub releases) are not reachable everywhere.
  if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages (wrangler, esbuild, binaryen)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

python_tools() {
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv for the end-to-end tests"
    python3 -m venv .venv
  fi
  if ! cmp -s tests/requirements.txt .venv/.requirements.txt; then
    log "installing Python test requirements"
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt .venv/.requirements.txt
  fi
}

# Headless Chromium renders the /analytics dashboard in the end-to-end tests (Debian's package;
# CI runs as root). Only installed when missing.
browser_tools() {
  if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    return
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "chromium is missing: install Debian's 'chromium' package (the dashboard test needs it)"
    return
  fi
  log "installing chromium (headless browser for the dashboard test)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
}

# The shell linter of `make lint` (Debian's shellcheck package).
lint_tools() {
  command -v shellcheck >/dev/null && return
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "shellcheck is missing: install Debian's 'shellcheck' package (make lint needs it)"
    return 1
  fi
  log "installing shellcheck (make lint)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
}

case "$what" in
  build) rust_build_tools; node_tools ;;
  python) python_tools ;;
  browser) browser_tools ;;
  lint) lint_tools ;;
  all) rust_build_tools; node_tools; python_tools; browser_tools; lint_tools ;;
  *) echo "usage: $0 [all|build|python|browser|lint]" >&2; exit 2 ;;
esac
