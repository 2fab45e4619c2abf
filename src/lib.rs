//! agent-gateway: the Worker shell.
//!
//! This file is the table of contents: it resolves the route, authenticates, and hands the
//! request to one small handler. Every decision is made by `gateway_core` (plain Rust, tested
//! natively); the shell only translates between the Workers runtime and it.
//!
//! One crate, two Workers. The default build is the gateway (`build/index_bg.wasm`): every route
//! on the request's path (leases, the upstream calls, the ledger's writes) and the hourly cron's
//! trigger, with no state of its own. `--features state` builds the state Worker
//! (`build/state/index_bg.wasm`): the Durable Objects (limiters, idempotency store, rollups),
//! the back office (`/analytics`, `/admin/gateways`) and the cron's work (rollups, ledger
//! pruning). The gateway binds its
//! objects by script name and reaches the rest over the `STATE` Service Binding
//! (`crate::state`), so the isolates that serve requests load, decode and compile neither the
//! objects' code nor the views' (together about a third of the wasm).

// The state Worker compiles the shared shell (context, ledger, respond...) but serves one
// route: what only the gateway reaches is dead code there, and not linked.
#![cfg_attr(feature = "state", allow(dead_code, unused_imports))]

mod aig;
mod alerts;
mod analytics;
mod context;
mod durable;
mod incoming;
mod ledger;
mod log;
mod relay;
mod respond;
mod routes;
mod state;

use std::future::Future;
use std::pin::Pin;

use gateway_core::request::route;
use worker::{event, web_sys, Context, Env, Response, Result};
#[cfg(not(feature = "state"))]
use worker::{ScheduleContext, ScheduledEvent};

use crate::context::Ctx;
use crate::incoming::Incoming;
use crate::respond::error_response;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The runtime's own request, not workers-rs' `Request` (see `incoming`).
#[cfg(not(feature = "state"))]
#[event(fetch)]
async fn fetch(raw: web_sys::Request, env: Env, worker_ctx: Context) -> Result<Response> {
    let req = Incoming::new(raw);
    let path = req.path();
    let ctx = Ctx::load(&env);
    if ctx.settings.test_panic_path.as_deref() == Some(path) {
        test_panic().await;
    }
    let route = match route::resolve(&req.method(), path) {
        Ok(route) => route,
        Err(err) => return error_response(&err, route::allowed_methods(path)),
    };
    // Shared with a streamed body, which settles its books in `waitUntil` when it ends.
    let worker_ctx = std::rc::Rc::new(worker_ctx);

    // Native routes find the token in their SDK's key header, admin routes take ADMIN_TOKEN,
    // /analytics takes AGENT_TOKEN or ANALYTICS_TOKEN: their handlers authenticate. Every other
    // route takes `Authorization: Bearer` with AGENT_TOKEN or a scoped token of AGENT_TOKENS,
    // and the chat route accounts to whom the token says is calling.
    let identity = match route.credential() {
        route::Credential::AgentBearer => {
            let header = req.header("authorization");
            match ctx.settings.agent_tokens().check_bearer(header.as_deref()) {
                Ok(identity) => Some(identity),
                Err(err) => return error_response(&err, None),
            }
        }
        _ => None,
    };

    // Each route's future is boxed: its state machine is then a function of its own, not inlined
    // into this one's, so an isolate's first request compiles (V8 compiles wasm lazily, per
    // function) only the route it serves.
    let served: Pin<Box<dyn Future<Output = Result<Response>> + '_>> = match route {
        route::Route::ChatCompletions => Box::pin(routes::chat::handle(req, &env, &worker_ctx, &ctx, identity)),
        route::Route::Models => return routes::models::handle(&ctx),
        route::Route::Health => return routes::health::handle(&ctx),
        route::Route::Limits => Box::pin(routes::limits::handle(&req, &env, &ctx)),
        route::Route::Native(provider) => Box::pin(routes::native::handle(req, &env, &worker_ctx, &ctx, provider)),
        // The back office (gateway management, the views of the books): the state Worker's,
        // over its binding.
        route::Route::Admin => Box::pin(state::binding::forward(req, &env, &ctx, state::binding::BackOffice::Admin)),
        route::Route::Analytics => {
            Box::pin(state::binding::forward(req, &env, &ctx, state::binding::BackOffice::Analytics))
        }
    };
    served.await
}

/// Tests only: the panic a request to `GATEWAY_TEST_PANIC_PATH` asks for (that var is unset
/// unless a test's Worker configuration sets it, so production never gets here; see
/// `Settings::test_panic_path`). After one turn of the event loop, so that it happens in a
/// promise callback, as a panic in a real handler would, not in the call into the module.
async fn test_panic() {
    worker::Delay::from(std::time::Duration::from_millis(1)).await;
    panic!("GATEWAY_TEST_PANIC_PATH requested: a test of panic recovery");
}

/// Cron (`[triggers] crons`): asks the state Worker to bring the daily rollups up to date
/// and to prune the ledger (`crate::state::entry::cron`).
#[cfg(not(feature = "state"))]
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    state::binding::cron(&env).await;
}

/// The state Worker: `/analytics`, and the cron's work when the gateway asks for it.
#[cfg(feature = "state")]
#[event(fetch)]
async fn fetch(raw: web_sys::Request, env: Env, _worker_ctx: Context) -> Result<Response> {
    state::entry::serve(Incoming::new(raw), &env).await
}
