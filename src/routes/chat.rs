//! `POST /v1/chat/completions`: read → plan → try each target through AI Gateway → relay.

use std::time::Duration;

use futures_util::StreamExt;
use gateway_core::error::{redact, ErrorKind, GatewayError};
use gateway_core::gateway::{self, Caller};
use gateway_core::plan::plan;
use gateway_core::relay::StreamSummary;
use gateway_core::request::ChatRequest;
use gateway_core::upstream::{self as up, AttemptOutcome, Disposition, Usage};
use serde::Serialize;
use worker::{Request, Response, ResponseBuilder, Result};

use crate::context::Ctx;
use crate::respond::{error_response_with, Decision};
use crate::stream::{OpenFault, Relay};
use crate::upstream::{self, header, SendError};

/// Error bodies are read this far, no further: enough for any message, bounded whatever comes.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

pub async fn handle(mut req: Request, ctx: &Ctx) -> Result<Response> {
    let started = worker::Date::now().as_millis();
    let mut decision = Decision::default();
    let mut log = RequestLog::default();
    match serve(&mut req, ctx, &mut decision, &mut log, started).await {
        Ok(response) => Ok(response),
        Err(err) => {
            log.status = err.status();
            log.error = Some(err.kind.code());
            log.finish(&decision, started, None);
            error_response_with(&err, None, &decision)
        }
    }
}

async fn serve(
    req: &mut Request,
    ctx: &Ctx,
    decision: &mut Decision,
    log: &mut RequestLog,
    started: u64,
) -> std::result::Result<Response, GatewayError> {
    let settings = &ctx.settings;
    let config = ctx.config()?;
    let body = read_body(req, settings.max_body_bytes).await?;
    let chat = ChatRequest::parse(&body)?;
    let plan = plan(config, &chat.model)?;
    let headers = req.headers();
    let caller = Caller::from_headers(
        headers.get("x-agent-name").ok().flatten().as_deref(),
        headers.get("x-github-repository").ok().flatten().as_deref(),
    )?;
    let url = gateway::chat_url(settings)?;
    let secrets = ctx.secrets();
    log.alias = plan.alias.map(str::to_owned);
    log.stream = chat.stream;
    log.agent = caller.agent.clone();
    log.repository = caller.repository.clone();

    let first_byte = Duration::from_millis(settings.first_byte_timeout_ms.into());
    let idle = Duration::from_millis(settings.stream_idle_timeout_ms.into());
    let count = plan.targets.len();
    let mut last_error = None;

    for (index, target) in plan.targets.iter().enumerate() {
        let is_last = index + 1 == count;
        decision.attempts += 1;
        decision.provider = Some(target.provider().to_owned());
        decision.model = Some(target.model().to_owned());
        decision.log_id = None;
        decision.cache_status = None;

        let upstream_body = chat.rewrite(&gateway::upstream_model(settings.endpoint, target));
        let metadata = gateway::metadata(&caller, plan.alias, decision.attempts);
        let call_headers = gateway::chat_headers(settings, metadata);

        let (outcome, err) = match upstream::post(&url, &call_headers, &upstream_body, first_byte).await {
            Err(SendError::Timeout) => (
                AttemptOutcome::Timeout,
                GatewayError::new(
                    ErrorKind::UpstreamTimeout,
                    format!("{} did not answer within {} ms.", target.id, first_byte.as_millis()),
                ),
            ),
            Err(SendError::Connection(message)) => (
                AttemptOutcome::ConnectionError,
                GatewayError::new(
                    ErrorKind::UpstreamUnreachable,
                    format!("AI Gateway could not be reached: {}", redact(&message, &secrets)),
                ),
            ),
            Ok((mut response, controller)) => {
                decision.log_id = header(&response, "cf-aig-log-id");
                decision.cache_status = header(&response, "cf-aig-cache-status");
                let status = response.status_code();
                if !(200..300).contains(&status) {
                    let body = upstream::read_limited(&mut response, ERROR_BODY_LIMIT).await;
                    let retry_after = header(&response, "retry-after");
                    (
                        AttemptOutcome::Status(status),
                        up::error_from_upstream(status, &body, retry_after, target.provider(), &secrets),
                    )
                } else if !chat.stream {
                    let bytes = response.bytes().await.unwrap_or_default();
                    match up::read_completion(&bytes) {
                        Ok(c) if c.finish_reason.as_deref() == Some("content_filter") && !is_last => {
                            (AttemptOutcome::ContentFiltered, content_filtered(&target.id))
                        }
                        Ok(c) => {
                            decision.trace.push(format!("{}={status}", target.id));
                            log.status = status;
                            log.finish(decision, started, c.usage);
                            return json_answer(status, bytes, decision);
                        }
                        Err(e) => (AttemptOutcome::MalformedAnswer, e),
                    }
                } else {
                    let bytes = response.stream().map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))?;
                    let mut relay = Relay::new(bytes, idle, controller);
                    match relay.open().await {
                        Ok(held) => {
                            let s = relay.summary();
                            if !s.saw_content && s.finish_reason.as_deref() == Some("content_filter") && !is_last {
                                (AttemptOutcome::ContentFiltered, content_filtered(&target.id))
                            } else {
                                decision.trace.push(format!("{}={status}", target.id));
                                log.status = status;
                                return stream_answer(relay, held, decision, std::mem::take(log), started);
                            }
                        }
                        Err(OpenFault::Stalled) => (
                            AttemptOutcome::Timeout,
                            GatewayError::new(
                                ErrorKind::UpstreamTimeout,
                                format!("{} stalled before its first token ({} ms).", target.id, idle.as_millis()),
                            ),
                        ),
                        Err(OpenFault::Fault(fault)) => (
                            AttemptOutcome::StreamCutBeforeContent,
                            GatewayError::new(ErrorKind::UpstreamMalformed, redact(&fault.describe(), &secrets)),
                        ),
                    }
                }
            }
        };

        decision.trace.push(format!("{}={}", target.id, outcome_label(outcome)));
        if up::classify(outcome) == Disposition::FailFast {
            return Err(err);
        }
        last_error = Some(err);
    }
    Err(last_error.unwrap_or_else(|| GatewayError::new(ErrorKind::Internal, "The route has no targets.")))
}

/// Reads the request body, refusing a wrong content type (415) or an oversized body (413) before
/// holding more of it than the limit.
async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, GatewayError> {
    let headers = req.headers();
    let content_type = headers.get("content-type").ok().flatten().unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(GatewayError::new(
            ErrorKind::UnsupportedMediaType,
            "Send the request as JSON with `Content-Type: application/json`.",
        ));
    }
    let too_large = || {
        GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body is larger than this gateway's limit of {limit} bytes (MAX_BODY_BYTES)."),
        )
    };
    let declared = headers.get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read_error = |e: worker::Error| {
        GatewayError::new(ErrorKind::InvalidRequest, format!("The request body could not be read: {e}"))
    };
    if declared.is_some() {
        // The runtime holds the request to its declared length, so one copy is enough.
        let body = req.bytes().await.map_err(read_error)?;
        return if body.len() > limit { Err(too_large()) } else { Ok(body) };
    }
    // No length declared (chunked): read chunk by chunk and stop at the limit.
    let mut stream = req.stream().map_err(read_error)?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(read_error)?);
        if body.len() > limit {
            return Err(too_large());
        }
    }
    Ok(body)
}

fn content_filtered(target: &str) -> GatewayError {
    GatewayError::new(ErrorKind::Upstream(200), format!("{target} blocked the answer with its content filter."))
}

fn outcome_label(outcome: AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Status(s) => s.to_string(),
        AttemptOutcome::Timeout => "timeout".into(),
        AttemptOutcome::ConnectionError => "unreachable".into(),
        AttemptOutcome::MalformedAnswer => "malformed".into(),
        AttemptOutcome::ContentFiltered => "content_filter".into(),
        AttemptOutcome::StreamCutBeforeContent => "stream_failed".into(),
    }
}

fn json_answer(status: u16, body: Vec<u8>, decision: &Decision) -> std::result::Result<Response, GatewayError> {
    let headers = decision.headers();
    let _ = headers.set("content-type", "application/json");
    Ok(ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body))
}

fn stream_answer(
    relay: Relay,
    held: Vec<u8>,
    decision: &Decision,
    log: RequestLog,
    started: u64,
) -> std::result::Result<Response, GatewayError> {
    let headers = decision.headers();
    let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
    let _ = headers.set("cache-control", "no-cache");
    let end_decision = decision.clone();
    let body = relay.into_body(held, move |summary: &StreamSummary, fault: Option<&GatewayError>| {
        let mut log = log;
        log.error = fault.map(|f| f.kind.code());
        log.finish(&end_decision, started, summary.usage);
    });
    ResponseBuilder::new()
        .with_status(200)
        .with_headers(headers)
        .from_stream(body)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))
}

/// One structured log line per request: what was decided, never a secret or prompt text.
#[derive(Debug, Default, Serialize)]
struct RequestLog {
    status: u16,
    alias: Option<String>,
    stream: bool,
    agent: Option<String>,
    repository: Option<String>,
    error: Option<&'static str>,
}

impl RequestLog {
    fn finish(&self, decision: &Decision, started: u64, usage: Option<Usage>) {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'static str,
            #[serde(flatten)]
            request: &'a RequestLog,
            provider: Option<&'a str>,
            model: Option<&'a str>,
            attempts: u32,
            trace: &'a [String],
            log_id: Option<&'a str>,
            cache: Option<&'a str>,
            prompt_tokens: Option<u64>,
            completion_tokens: Option<u64>,
            duration_ms: u64,
        }
        let line = Line {
            event: "chat_completion",
            request: self,
            provider: decision.provider.as_deref(),
            model: decision.model.as_deref(),
            attempts: decision.attempts,
            trace: &decision.trace,
            log_id: decision.log_id.as_deref(),
            cache: decision.cache_status.as_deref(),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            duration_ms: worker::Date::now().as_millis().saturating_sub(started),
        };
        if let Ok(text) = serde_json::to_string(&line) {
            worker::console_log!("{text}");
        }
    }
}
