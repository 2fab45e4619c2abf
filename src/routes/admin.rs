//! `/admin/gateways[/{id}[/provider_configs]]`: AI Gateway management over the Cloudflare API,
//! behind `ADMIN_TOKEN`. What maps to what, and what is changed on the way back, is decided in
//! `gateway_core::admin`; this only carries the request there and the answer back.

use std::time::Duration;

use gateway_core::admin::{self, AdminCall};
use gateway_core::error::{redact, ErrorKind, GatewayError};
use worker::{Response, ResponseBuilder, Result};

use crate::aig::fetch::{self as upstream, SendError};
use crate::context::Ctx;
use crate::incoming::Incoming;
use crate::respond::error_response;

/// Cloudflare's answers are read this far (a page of 100 gateways is well under it).
const ANSWER_LIMIT: usize = 1024 * 1024;

pub async fn handle(req: Incoming, ctx: &Ctx) -> Result<Response> {
    let method = req.method();
    match serve(&req, ctx).await {
        Ok((status, body)) => {
            log(&method, status, None);
            let headers = worker::Headers::new();
            headers.set("content-type", "application/json")?;
            Ok(ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body.into_bytes()))
        }
        Err(err) => {
            log(&method, err.status(), Some(err.kind.code()));
            error_response(&err, None)
        }
    }
}

async fn serve(req: &Incoming, ctx: &Ctx) -> std::result::Result<(u16, String), GatewayError> {
    let settings = &ctx.settings;
    let authorization = req.header("authorization");
    admin::authenticate(authorization.as_deref(), settings)?;
    let call = AdminCall::parse(&req.method(), req.path(), req.query())?;
    let body = if call.has_body() {
        let body = req.read_body(settings.max_body_bytes).await?;
        admin::check_body(&body)?;
        Some(body)
    } else {
        None
    };
    let token = settings.api_token.as_ref().map(|t| t.expose()).unwrap_or_default();
    let headers = [("authorization", format!("Bearer {token}"))];
    let wait = Duration::from_millis(settings.first_byte_timeout_ms.into());
    let secrets = ctx.secrets();
    // The answer within the same time again, and never held past a megabyte, error or not.
    let bounds = upstream::Bounds {
        idle_ms: settings.first_byte_timeout_ms.into(),
        deadline_ms: u64::MAX,
        error_bytes: ANSWER_LIMIT,
    };
    let read = upstream::Read::UpTo(ANSWER_LIMIT);
    let answer = upstream::call(call.method(), &call.url(settings)?, &headers, body.as_deref(), wait, read, bounds)
        .await
        .map_err(|e| match e {
            SendError::Timeout => GatewayError::new(
                ErrorKind::UpstreamTimeout,
                format!("The Cloudflare API did not answer within {} ms.", wait.as_millis()),
            ),
            SendError::Connection(m) => GatewayError::new(
                ErrorKind::UpstreamUnreachable,
                format!("The Cloudflare API could not be reached: {}", redact(&m, &secrets)),
            ),
        })?;
    let status = answer.status;
    let answer = match answer.body {
        upstream::Body::Bytes(bytes) => bytes,
        _ => Vec::new(),
    };
    let relayed = admin::relay(status, &answer, &secrets)?;
    Ok((relayed.status, relayed.body))
}

fn log(method: &str, status: u16, error: Option<&str>) {
    let line = serde_json::json!({"event": "admin", "method": method, "status": status, "error": error});
    worker::console_log!("{line}");
}
