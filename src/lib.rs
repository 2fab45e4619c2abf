//! agent-gateway: the Worker shell.
//!
//! This file is the table of contents: it resolves the route, authenticates, and hands the
//! request to one small handler; the hourly cron goes to `cron`. The decisions are
//! `gateway_core`'s (plain Rust, tested natively); the shell translates between the Workers
//! runtime and it. One Worker: its Durable Objects (limiters, idempotency store, analytics
//! rollups), its D1 ledger, its cron and its back office (`/analytics`, `/admin/gateways`) are
//! all in this one script.

mod aig;
mod alerts;
mod analytics;
mod context;
mod cron;
mod d1;
mod durable;
mod incoming;
mod ledger;
mod relay;
mod respond;
mod routes;
mod signatures;

use std::future::Future;
use std::pin::Pin;

use gateway_core::request::route;
use worker::{event, web_sys, Context, Env, Response, Result, ScheduleContext, ScheduledEvent};

use crate::context::Ctx;
use crate::incoming::Incoming;
use crate::respond::error_response;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The runtime's own request, not workers-rs' `Request` (see `incoming`).
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
    // route takes `Authorization: Bearer` with AGENT_TOKEN or a scoped token of AGENT_TOKENS:
    // the chat route accounts to whom the token says is calling, /limits shows what it may see.
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
        route::Route::Health => Box::pin(routes::health::handle(&env, &ctx)),
        route::Route::Limits => Box::pin(routes::limits::handle(&req, &env, &ctx, identity)),
        route::Route::Native(provider) => Box::pin(routes::native::handle(req, &env, &worker_ctx, &ctx, provider)),
        route::Route::Admin => Box::pin(routes::admin::handle(req, &ctx)),
        route::Route::Analytics => Box::pin(routes::analytics::handle(req, &env, &ctx)),
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

/// Cron (`[triggers] crons`): the daily rollups and the ledger's pruning.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    cron::run(&env).await;
}
