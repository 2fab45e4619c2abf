// The Worker's entry module (bundled by `make worker` into build/index.js, around
// worker-build's output in build/generated/, which esbuild's alias `generated-worker` names).
//
// worker-build's own entry exports `new Proxy(Entrypoint, …)`: every request constructs an
// Entrypoint through a `construct` trap, wraps the instance in a second Proxy whose `get` trap
// wraps `fetch` in a third, per request (about 12% of the Worker's CPU in the bench profile).
// Here requests go to a plain object that calls the generated handler directly.
//
// Panic recovery is kept, without the proxies. A Rust panic (panic = "abort") ends in a wasm
// trap; wasm-bindgen's glue (built with --force-enable-abort-handler and the reset-state
// function, as worker-build builds it) marks the instance terminated, and its guard on the
// next call into the module makes a fresh instance before that call runs. What the proxies
// added on top is the `criticalError` flag the panic hook sets: they reset the module once
// more when they see it. It is cleared here before each call, so that the Durable Object
// classes (still behind worker-build's proxies, one construction per object, not per request)
// do not reset the module a second time under a request that is already being served by the
// fresh instance (left set, that request hangs until the runtime cancels it).
// tests/e2e/test_panic_recovery.py: one request panics, the next is served.

import Generated from "generated-worker";

// The Durable Object classes, as worker-build exports them.
export * from "generated-worker";

// worker-build's handlers, e.g. `function fetch(req) { return exports.fetch.call(this, req,
// this.env, this.ctx) }`: the Proxy traps only construction, so the prototype is the plain one.
const { fetch: wasmFetch, scheduled: wasmScheduled } = Generated.prototype;
if (typeof wasmFetch !== "function" || typeof wasmScheduled !== "function") {
  throw new Error("worker-build's entry no longer has its fetch and scheduled handlers: update js/entry.mjs");
}

// Set by the worker crate's start function (globalThis.__worker_init_state), shared with the
// proxies of the Durable Object classes.
const state = globalThis.__worker_init_state;

export default {
  fetch(request, env, ctx) {
    if (state.criticalError) state.criticalError = false;
    return wasmFetch.call({ env, ctx }, request);
  },
  scheduled(event, env, ctx) {
    if (state.criticalError) state.criticalError = false;
    return wasmScheduled.call({ env, ctx }, event);
  },
};
