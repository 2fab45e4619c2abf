//! The state Worker's entry (`--features state`): `/analytics` and `/admin/gateways` as the
//! gateway forwards them (each authenticates as it would in the gateway: AGENT_TOKEN or
//! ANALYTICS_TOKEN; ADMIN_TOKEN), and the cron's work when the gateway's scheduled handler asks
//! (`binding::CRON_PATH`). Anything else is the 404 or 405 the gateway would give.

use gateway_core::analytics::access;
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::request::route::{self, Route};
use worker::{Env, Response, Result};

use crate::analytics::now_ms;
use crate::context::Ctx;
use crate::incoming::Incoming;
use crate::respond::error_response;
use crate::state::binding::CRON_PATH;

pub async fn serve(req: Incoming, env: &Env) -> Result<Response> {
    let ctx = Ctx::load(env);
    let method = req.method();
    if req.path() == CRON_PATH {
        if method != "POST" {
            return error_response(
                &GatewayError::new(ErrorKind::MethodNotAllowed, format!("{CRON_PATH} takes POST.")),
                Some("POST"),
            );
        }
        return cron(&req, env, &ctx).await;
    }
    match route::resolve(&method, req.path()) {
        Ok(Route::Analytics) => crate::routes::analytics::handle(req, env, &ctx).await,
        Ok(Route::Admin) => crate::routes::admin::handle(req, &ctx).await,
        Ok(_) => error_response(
            &GatewayError::new(ErrorKind::NotFound, "The state Worker serves /analytics and /admin/gateways only."),
            None,
        ),
        Err(err) => error_response(&err, route::allowed_methods(req.path())),
    }
}

/// Keeps the daily analytics rollups up to date, and prunes the ledger's rows older than
/// `LEDGER_RETENTION_DAYS`; each step logs one line.
async fn cron(req: &Incoming, env: &Env, ctx: &Ctx) -> Result<Response> {
    let s = &ctx.settings;
    let accepted: Vec<&str> = s.agent_token.iter().map(|t| t.expose()).collect();
    if let Err(err) = access::check(req.header("authorization").as_deref(), &accepted) {
        return error_response(&err, None);
    }
    let run = crate::analytics::rollups::run(env).await;
    if let Ok(line) = serde_json::to_string(&run) {
        worker::console_log!("{line}");
    }
    // An hourly run deletes at most 40 batches (200,000 rows): a backlog clears over a few runs
    // without any one of them nearing a Worker's limits.
    let retention = s.ledger_retention_days;
    let pruned = match crate::ledger::prune(env, now_ms(), retention, 40).await {
        Ok(deleted) => serde_json::json!({"event": "ledger_pruned", "retention_days": retention, "deleted": deleted}),
        Err(error) => serde_json::json!({"event": "ledger_prune_failed", "error": error}),
    };
    worker::console_log!("{pruned}");
    // What it did is in those lines; the gateway only needs to know it ran.
    Response::empty()
}
