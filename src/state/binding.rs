//! The gateway's side of the state Worker: `/analytics`, `/admin/gateways` and the hourly cron
//! go over the `STATE` Service Binding (wrangler.toml `[[services]]`) to the state Worker, the
//! same crate built with `--features state` (wrangler.state.toml), which has no public URL.
//! (Its Durable Objects are bound by script name, and called as before: `crate::durable`.)
//!
//! Both Workers authenticate the back office (AGENT_TOKEN or ANALYTICS_TOKEN; ADMIN_TOKEN): the
//! gateway before it hands a request over as it came, the state Worker again when it serves it.

use gateway_core::admin;
use gateway_core::analytics::access;
use gateway_core::error::{ErrorKind, GatewayError};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Result};

use crate::context::Ctx;
use crate::incoming::Incoming;
use crate::respond::error_response;

pub const BINDING: &str = "STATE";
/// The state Worker's path for the cron's work; only ever called over the binding, with
/// AGENT_TOKEN (not ANALYTICS_TOKEN, which reads and nothing else).
pub const CRON_PATH: &str = "/__cron";

fn unbound() -> GatewayError {
    GatewayError::new(
        ErrorKind::Configuration,
        "This route is served by the state Worker, and this gateway has no `STATE` Service Binding to it \
         (deploy wrangler.state.toml, see the README).",
    )
}

/// The back office's routes, which the gateway authenticates before it hands them on.
pub enum BackOffice {
    Analytics,
    Admin,
}

/// `/analytics` or `/admin/gateways`: authenticated here first, by the gateway's own secrets
/// (the one place that knows every scoped token, so ADMIN_TOKEN's separation from them holds,
/// and where a rotation takes effect), then answered by the state Worker, which checks again by
/// its own: a token must pass both, so secrets that differ between the two fail closed.
pub async fn forward(req: Incoming, env: &Env, ctx: &Ctx, route: BackOffice) -> Result<Response> {
    let s = &ctx.settings;
    let header = req.header("authorization");
    let checked = match route {
        BackOffice::Analytics => access::check_reader(header.as_deref(), s).map_err(|e| crate::analytics::refused(&e)),
        BackOffice::Admin => admin::authenticate(header.as_deref(), s).map_err(|e| error_response(&e, None)),
    };
    if let Err(refusal) = checked {
        return refusal;
    }
    let Ok(service) = env.service(BINDING) else { return error_response(&unbound(), None) };
    let unreachable = |what: String| {
        error_response(
            &GatewayError::new(
                ErrorKind::UpstreamUnreachable,
                format!(
                    "The state Worker (agent-gateway-state, the `STATE` binding) {what}; is it deployed? Try again."
                ),
            ),
            None,
        )
    };
    match service.fetch_request(Request::from(req.into_raw())).await {
        // Its own failures are in the OpenAI shape (JSON); anything else at 5xx is the runtime's
        // (the Worker missing or failing before it could answer), said as ours.
        Ok(response) if response.status_code() >= 500 && !is_json(&response) => {
            unreachable(format!("answered {}", response.status_code()))
        }
        Ok(response) => Ok(response),
        Err(_) => unreachable("did not answer".into()),
    }
}

fn is_json(response: &Response) -> bool {
    let content_type = response.headers().get("content-type").ok().flatten().unwrap_or_default();
    content_type.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The cron: the state Worker rolls up and prunes (and logs what it did); a failure to reach
/// it is logged here, as one line.
pub async fn cron(env: &Env) {
    let ctx = Ctx::load(env);
    let s = &ctx.settings;
    let failed = |error: String| {
        let line = serde_json::json!({"event": "analytics_cron_failed", "error": error});
        worker::console_error!("{line}");
    };
    let Ok(service) = env.service(BINDING) else { return failed(unbound().message) };
    let Some(token) = s.agent_token.as_ref() else {
        return failed("AGENT_TOKEN is not set: the state Worker takes the cron from no one else".into());
    };
    let headers = Headers::new();
    if headers.set("authorization", &format!("Bearer {}", token.expose())).is_err() {
        return failed("AGENT_TOKEN is not a valid header value".into());
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers);
    match service.fetch(format!("https://agent-gateway-state{CRON_PATH}"), Some(init)).await {
        Ok(response) if (200..300).contains(&response.status_code()) => {}
        Ok(response) => failed(format!("the state Worker answered {}", response.status_code())),
        Err(_) => failed("the state Worker did not answer".into()),
    }
}
