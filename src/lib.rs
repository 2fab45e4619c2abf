//! agent-gateway: the Worker shell.
//!
//! This file is the table of contents: it resolves the route, authenticates, and hands the
//! request to one small handler. Every decision is made by `gateway_core` (plain Rust, tested
//! natively); the shell only translates between the Workers runtime and it.

mod context;
mod respond;
mod routes;
mod stream;
mod upstream;

use gateway_core::{authenticate, route};
use worker::{event, Context, Env, Request, Response, Result};

use crate::context::Ctx;
use crate::respond::error_response;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let method = req.method();
    let route = match route::resolve(method.as_ref(), &path) {
        Ok(route) => route,
        Err(err) => return error_response(&err, route::allowed_methods(&path)),
    };
    let ctx = Ctx::load(&env);

    if route.needs_auth() {
        let header = req.headers().get("authorization").ok().flatten();
        let expected = ctx.settings.agent_token.as_ref().map(|t| t.expose());
        if let Err(err) = authenticate::check_bearer(header.as_deref(), expected) {
            return error_response(&err, None);
        }
    }

    match route {
        route::Route::ChatCompletions => routes::chat::handle(req, &ctx).await,
        route::Route::Models => routes::models::handle(&ctx),
        route::Route::Health => routes::health::handle(&ctx),
    }
}
