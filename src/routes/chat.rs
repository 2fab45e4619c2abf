//! `POST /v1/chat/completions`: read → plan → for each target: reserve its limits, call AI
//! Gateway (retrying transient faults), relay → settle the cost → respond.

use std::time::Duration;

use futures_util::StreamExt;
use gateway_core::cache::{self, CallerCache};
use gateway_core::config::{GatewayConfig, RequestFacts, Target};
use gateway_core::error::{redact, ErrorKind, GatewayError};
use gateway_core::gateway::{self, Caller};
use gateway_core::limits::Refusal;
use gateway_core::plan::{plan, Plan};
use gateway_core::pricing::{Price, Usd};
use gateway_core::relay::StreamSummary;
use gateway_core::request::ChatRequest;
use gateway_core::retry::{self, Next};
use gateway_core::upstream::{self as up, AttemptOutcome, Usage};
use serde::Serialize;
use worker::{Context, Delay, Env, Request, Response, ResponseBuilder, Result};

use std::cell::RefCell;

use gateway_core::idempotency::{IdempotencyKey, StoredAnswer, MAX_STORED_BYTES};

use crate::context::Ctx;
use crate::idempotency::{self, Claim, Claimed};
use crate::limits::{self, Reservation};
use crate::respond::{error_response_with, Decision};
use crate::stream::{OpenFault, Relay};
use crate::upstream::{self, header, BodyError, SendError};

/// Error bodies are read this far, no further: enough for any message, bounded whatever comes.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

pub async fn handle(mut req: Request, env: &Env, wctx: &Context, ctx: &Ctx) -> Result<Response> {
    let started = now();
    let mut decision = Decision::default();
    let mut log = RequestLog::default();
    match serve(&mut req, env, wctx, ctx, &mut decision, &mut log, started).await {
        Ok(response) => Ok(response),
        Err(err) => {
            log.status = err.status();
            log.error = Some(err.kind.code());
            log.cost_usd = decision.charged;
            log.finish(&decision, started, None);
            error_response_with(&err, None, &decision)
        }
    }
}

/// Everything one request's attempts share.
struct Call<'a> {
    env: &'a Env,
    wctx: &'a Context,
    ctx: &'a Ctx,
    config: &'a GatewayConfig,
    chat: ChatRequest<'a>,
    plan: Plan<'a>,
    caller: Caller,
    caller_cache: CallerCache<'a>,
    url: String,
    prompt_tokens: u64,
    max_output_tokens: u64,
    deadline: u64,
    started: u64,
    /// The idempotency key this request holds, if it sent one; taken by the answer that completes it.
    claim: RefCell<Option<Claim>>,
}

/// How one attempt ended.
enum Attempt {
    Answered(Response),
    Failed { outcome: AttemptOutcome, err: GatewayError },
}

async fn serve(
    req: &mut Request,
    env: &Env,
    wctx: &Context,
    ctx: &Ctx,
    decision: &mut Decision,
    log: &mut RequestLog,
    started: u64,
) -> std::result::Result<Response, GatewayError> {
    let settings = &ctx.settings;
    let config = ctx.config()?;
    let body = read_body(req, settings.max_body_bytes).await?;
    let chat = ChatRequest::parse(&body)?;
    let headers = req.headers();
    let header_of = |name: &str| headers.get(name).ok().flatten();
    let caller =
        Caller::from_headers(header_of("x-agent-name").as_deref(), header_of("x-github-repository").as_deref())?;
    let (skip_cache, cache_control, scope) =
        (header_of("cf-aig-skip-cache"), header_of("cache-control"), header_of("x-gateway-cache-scope"));
    let caller_cache = CallerCache::from_headers(skip_cache.as_deref(), cache_control.as_deref(), scope.as_deref())?;
    let deadline = started + u64::from(settings.request_deadline_ms);
    let key = IdempotencyKey::from_headers(
        header_of("idempotency-key").as_deref(),
        header_of("x-github-delivery").as_deref(),
        &body,
    )?;
    let claim = match key {
        // The lease outlives the deadline: a repeat waits for the first run rather than racing it.
        Some(key) => {
            match idempotency::claim(env, &key, u64::from(settings.request_deadline_ms) + 60_000, deadline).await? {
                Claimed::Replay(response) => return Ok(response),
                Claimed::Run(claim) => Some(claim),
            }
        }
        None => None,
    };
    let prompt_tokens = chat.estimated_prompt_tokens(config.estimates.prompt_bytes_per_token);
    let facts = RequestFacts {
        input_tokens: prompt_tokens,
        has_tools: chat.has_tools(),
        agent: caller.agent.as_deref(),
        stream: chat.stream,
    };
    let plan = plan(config, &ctx.prices, &chat.model, &facts, js_sys::Math::random())?;
    log.alias = plan.alias.map(str::to_owned);
    log.stream = chat.stream;
    log.agent = caller.agent.clone();
    log.repository = caller.repository.clone();
    let call = Call {
        env,
        wctx,
        ctx,
        config,
        max_output_tokens: chat.max_output_tokens.unwrap_or(config.estimates.max_output_tokens),
        chat,
        plan,
        caller,
        caller_cache,
        url: gateway::chat_url(settings)?,
        prompt_tokens,
        deadline,
        started,
        claim: RefCell::new(claim),
    };
    let result = call.run(decision, log).await;
    if result.is_err() {
        if let Some(claim) = call.claim.borrow_mut().take() {
            wctx.wait_until(claim.abort());
        }
    }
    result
}

impl Call<'_> {
    /// Tries the plan's targets in order, each within its limits, retrying transient faults.
    async fn run(&self, decision: &mut Decision, log: &mut RequestLog) -> std::result::Result<Response, GatewayError> {
        let mut last_error: Option<GatewayError> = None;
        let mut refusals: Vec<(String, Refusal)> = Vec::new();
        'targets: for target in &self.plan.targets {
            let provider = target.provider();
            let (Some(limits), Some(price)) =
                (self.config.providers.get(provider), self.ctx.prices.lookup(provider, target.model()))
            else {
                // Configuration validation makes this unreachable; say so rather than spend blind.
                return Err(GatewayError::new(
                    ErrorKind::Configuration,
                    format!("{} has no limits or price", target.id),
                ));
            };
            let worst_case = price.worst_case(self.prompt_tokens, self.max_output_tokens);
            let mut tries_here = 0;
            loop {
                let remaining = self.deadline.saturating_sub(now());
                if remaining == 0 {
                    last_error.get_or_insert_with(|| {
                        GatewayError::new(
                            ErrorKind::UpstreamTimeout,
                            "The request's deadline passed before any target answered.",
                        )
                    });
                    break 'targets;
                }
                let reservation = match limits::reserve(self.env, provider, limits, worst_case).await {
                    Ok(r) => r,
                    Err(refusal) => {
                        decision.trace.push(format!("{}=skipped:{}", target.id, refusal_label(&refusal)));
                        refusals.push((provider.to_owned(), refusal));
                        continue 'targets;
                    }
                };
                tries_here += 1;
                decision.attempts += 1;
                decision.provider = Some(provider.to_owned());
                decision.model = Some(target.model().to_owned());
                decision.log_id = None;
                decision.cache_status = None;
                let first_byte = remaining.min(u64::from(self.ctx.settings.first_byte_timeout_ms));
                match self.attempt(target, price, reservation, first_byte, decision, log).await {
                    Attempt::Answered(response) => return Ok(response),
                    Attempt::Failed { outcome, err } => {
                        decision.trace.push(format!("{}={}", target.id, outcome_label(outcome)));
                        let wait = retry::retry_after_ms(err.retry_after.as_deref());
                        let remaining = self.deadline.saturating_sub(now());
                        match retry::after_failure(
                            outcome,
                            tries_here,
                            wait,
                            remaining,
                            &self.config.retry,
                            js_sys::Math::random(),
                        ) {
                            Next::Stop => return Err(err),
                            Next::RetrySame { delay_ms } => {
                                last_error = Some(err);
                                Delay::from(Duration::from_millis(delay_ms)).await;
                            }
                            Next::NextTarget => {
                                last_error = Some(err);
                                continue 'targets;
                            }
                        }
                    }
                }
            }
        }
        if decision.attempts == 0 && !refusals.is_empty() {
            return Err(limits_exhausted(self.plan.alias, &refusals));
        }
        Err(last_error.unwrap_or_else(|| GatewayError::new(ErrorKind::Internal, "The route has no targets.")))
    }

    /// Settles an attempt's reservation (after the response; the limiter is told in `waitUntil`)
    /// and counts what it charged into the request's total.
    fn settle(&self, decision: &mut Decision, reservation: Reservation, cost: Option<Usd>) {
        let charged = decision.charged.unwrap_or(Usd::ZERO).saturating_add(reservation.charge(cost));
        decision.charged = Some(charged);
        self.wctx.wait_until(reservation.settle(cost));
    }

    fn release(&self, decision: &mut Decision, reservation: Reservation) {
        decision.charged.get_or_insert(Usd::ZERO);
        self.wctx.wait_until(reservation.release());
    }

    /// One call to AI Gateway for `target`, holding `reservation` until the cost is known.
    async fn attempt(
        &self,
        target: &Target,
        price: &Price,
        reservation: Reservation,
        first_byte_ms: u64,
        decision: &mut Decision,
        log: &mut RequestLog,
    ) -> Attempt {
        let settings = &self.ctx.settings;
        let secrets = self.ctx.secrets();
        let upstream_body = self.chat.rewrite(&gateway::upstream_model(settings.endpoint, target));
        let metadata = gateway::metadata(&self.caller, self.plan.alias, decision.attempts);
        let mut call_headers = gateway::chat_headers(settings, metadata);
        call_headers.extend(cache::headers(
            self.plan.cache,
            self.caller_cache,
            self.chat.stream,
            target,
            &upstream_body,
        ));

        let first_byte = Duration::from_millis(first_byte_ms);
        let (mut response, controller) =
            match upstream::post(&self.url, &call_headers, &upstream_body, first_byte).await {
                Ok(answer) => answer,
                Err(e) => {
                    self.wctx.wait_until(reservation.release());
                    return match e {
                        SendError::Timeout => failed(
                            AttemptOutcome::Timeout,
                            ErrorKind::UpstreamTimeout,
                            format!("{} did not answer within {} ms.", target.id, first_byte.as_millis()),
                        ),
                        SendError::Connection(message) => failed(
                            AttemptOutcome::ConnectionError,
                            ErrorKind::UpstreamUnreachable,
                            format!("AI Gateway could not be reached: {}", redact(&message, &secrets)),
                        ),
                    };
                }
            };
        decision.log_id = header(&response, "cf-aig-log-id");
        decision.cache_status = header(&response, "cf-aig-cache-status");
        let cache_hit = decision.cache_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HIT"));
        let is_last_target = self.plan.targets.last() == Some(target);
        let status = response.status_code();

        if !(200..300).contains(&status) {
            let body = upstream::read_limited(&mut response, ERROR_BODY_LIMIT).await;
            self.release(decision, reservation);
            let retry_after = header(&response, "retry-after");
            return Attempt::Failed {
                outcome: AttemptOutcome::Status(status),
                err: up::error_from_upstream(status, &body, retry_after, target.provider(), &secrets),
            };
        }

        if !self.chat.stream {
            // The whole answer, within the idle deadline and what is left of the request's.
            let remaining = self.deadline.saturating_sub(now()).max(1);
            let within = Duration::from_millis(remaining.min(settings.stream_idle_timeout_ms.into()));
            let bytes = match upstream::read_all(&response, within).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    // The answer started and broke off: it may have been billed, so the worst case.
                    self.settle(decision, reservation, None);
                    return match e {
                        BodyError::Timeout => failed(
                            AttemptOutcome::Timeout,
                            ErrorKind::UpstreamTimeout,
                            format!("{} stopped sending its answer for {} ms.", target.id, within.as_millis()),
                        ),
                        BodyError::Failed(message) => failed(
                            AttemptOutcome::MalformedAnswer,
                            ErrorKind::UpstreamMalformed,
                            format!("The answer of {} broke off: {}", target.id, redact(&message, &secrets)),
                        ),
                    };
                }
            };
            return match up::read_completion(&bytes) {
                Ok(c) => {
                    let cost = attempt_cost(price, c.usage, cache_hit);
                    self.settle(decision, reservation, cost);
                    if c.finish_reason.as_deref() == Some("content_filter") && !is_last_target {
                        return Attempt::Failed {
                            outcome: AttemptOutcome::ContentFiltered,
                            err: content_filtered(&target.id),
                        };
                    }
                    decision.trace.push(format!("{}={status}", target.id));
                    log.status = status;
                    log.cost_usd = decision.charged;
                    log.finish(decision, self.started, c.usage);
                    if let Some(claim) = self.claim.borrow_mut().take() {
                        match stored_answer(status, decision, "application/json", bytes.clone()) {
                            Some(answer) => self.wctx.wait_until(claim.complete(answer)),
                            None => self.wctx.wait_until(claim.abort()),
                        }
                    }
                    Attempt::Answered(json_answer(status, bytes, decision))
                }
                Err(e) => {
                    // An answer we cannot read may still have been billed: charge the worst case.
                    self.settle(decision, reservation, None);
                    Attempt::Failed { outcome: AttemptOutcome::MalformedAnswer, err: e }
                }
            };
        }

        let bytes = match response.stream() {
            Ok(b) => b,
            Err(e) => {
                self.release(decision, reservation);
                return failed(AttemptOutcome::MalformedAnswer, ErrorKind::UpstreamMalformed, e.to_string());
            }
        };
        let idle = Duration::from_millis(settings.stream_idle_timeout_ms.into());
        let mut relay = Relay::new(bytes, idle, controller);
        match relay.open().await {
            Ok(held) => {
                let s = relay.summary();
                if !s.saw_content && s.finish_reason.as_deref() == Some("content_filter") && !is_last_target {
                    let cost = attempt_cost(price, s.usage, cache_hit);
                    self.settle(decision, reservation, cost);
                    return Attempt::Failed {
                        outcome: AttemptOutcome::ContentFiltered,
                        err: content_filtered(&target.id),
                    };
                }
                decision.trace.push(format!("{}={status}", target.id));
                log.status = status;
                let claim = self.claim.borrow_mut().take();
                if claim.is_some() {
                    relay.capture(MAX_STORED_BYTES);
                }
                let accounting = Accounting { price: price.clone(), reservation, cache_hit, claim };
                Attempt::Answered(stream_answer(relay, held, decision, std::mem::take(log), self.started, accounting))
            }
            Err(fault) => {
                // Nothing reached the client and no content came: the attempt is released.
                self.release(decision, reservation);
                match fault {
                    OpenFault::Stalled => failed(
                        AttemptOutcome::Timeout,
                        ErrorKind::UpstreamTimeout,
                        format!("{} stalled before its first token ({} ms).", target.id, idle.as_millis()),
                    ),
                    OpenFault::Fault(fault) => failed(
                        AttemptOutcome::StreamCutBeforeContent,
                        ErrorKind::UpstreamMalformed,
                        redact(&fault.describe(), &secrets),
                    ),
                }
            }
        }
    }
}

fn failed(outcome: AttemptOutcome, kind: ErrorKind, message: String) -> Attempt {
    Attempt::Failed { outcome, err: GatewayError::new(kind, message) }
}

/// The cost of an answered attempt: 0 for a cache hit, the price table's for its usage, `None`
/// (charged at the worst case) when usage is missing or a price component is unknown.
fn attempt_cost(price: &Price, usage: Option<Usage>, cache_hit: bool) -> Option<Usd> {
    if cache_hit {
        return Some(Usd::ZERO);
    }
    let cost = price.cost(usage?.tokens());
    if let Some(warning) = &cost.warning {
        worker::console_warn!("{warning}");
    }
    cost.usd
}

fn limits_exhausted(alias: Option<&str>, refusals: &[(String, Refusal)]) -> GatewayError {
    let which = alias.map_or_else(|| "the requested model".to_owned(), |a| format!("route `{a}`"));
    let reasons: Vec<String> = refusals.iter().map(|(p, r)| format!("{p}: {}", r.message)).collect();
    let mut err = GatewayError::new(
        ErrorKind::LimitsExhausted,
        format!("Every target of {which} is over this gateway's limits — {}.", reasons.join("; ")),
    );
    err.retry_after = refusals.iter().map(|(_, r)| r.retry_after_secs).min().map(|s| s.to_string());
    err
}

pub(crate) fn refusal_label(r: &Refusal) -> &'static str {
    match (r.rate_limited, r.over_budget) {
        (true, true) => "rate_limited+over_budget",
        (true, false) => "rate_limited",
        (false, true) => "over_budget",
        (false, false) => "limiter_unavailable",
    }
}

fn now() -> u64 {
    worker::Date::now().as_millis()
}

/// Reads the request body, refusing a wrong content type (415) or an oversized body (413) before
/// holding more of it than the limit.
pub(crate) async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, GatewayError> {
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

pub(crate) fn outcome_label(outcome: AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Status(s) => s.to_string(),
        AttemptOutcome::Timeout => "timeout".into(),
        AttemptOutcome::ConnectionError => "unreachable".into(),
        AttemptOutcome::MalformedAnswer => "malformed".into(),
        AttemptOutcome::ContentFiltered => "content_filter".into(),
        AttemptOutcome::StreamCutBeforeContent => "stream_failed".into(),
    }
}

fn json_answer(status: u16, body: Vec<u8>, decision: &Decision) -> Response {
    let headers = decision.headers();
    let _ = headers.set("content-type", "application/json");
    ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body)
}

/// What a streamed answer settles when it ends.
struct Accounting {
    price: Price,
    reservation: Reservation,
    cache_hit: bool,
    claim: Option<Claim>,
}

fn stream_answer(
    relay: Relay,
    held: Vec<u8>,
    decision: &Decision,
    log: RequestLog,
    started: u64,
    accounting: Accounting,
) -> Response {
    let headers = decision.headers();
    let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
    let _ = headers.set("cache-control", "no-cache");
    let end_decision = decision.clone();
    let body = relay.into_body(
        held,
        move |summary: StreamSummary, fault: Option<GatewayError>, copy: Option<Vec<u8>>| async move {
            let Accounting { price, reservation, cache_hit, claim } = accounting;
            // A stream cut after content was billed for something we cannot see: the worst case.
            let cost = if fault.is_some() { None } else { attempt_cost(&price, summary.usage, cache_hit) };
            reservation.settle(cost).await;
            if let Some(claim) = claim {
                let answer = copy
                    .filter(|_| fault.is_none())
                    .and_then(|copy| stored_answer(200, &end_decision, "text/event-stream; charset=utf-8", copy));
                match answer {
                    Some(answer) => claim.complete(answer).await,
                    None => claim.abort().await,
                }
            }
            let mut log = log;
            log.error = fault.as_ref().map(|f| f.kind.code());
            log.cost_usd = cost;
            log.finish(&end_decision, started, summary.usage);
        },
    );
    ResponseBuilder::new().with_status(200).with_headers(headers).from_stream(body).unwrap_or_else(|e| {
        let err = GatewayError::new(ErrorKind::Internal, e.to_string());
        ResponseBuilder::new().with_status(500).fixed(err.to_json().into_bytes())
    })
}

/// An answer as kept for idempotent replays; `None` when the body is not UTF-8 text (then it is
/// not kept, and a repeat runs again).
fn stored_answer(status: u16, decision: &Decision, content_type: &str, body: Vec<u8>) -> Option<StoredAnswer> {
    let mut headers = decision.pairs();
    headers.push(("content-type".to_owned(), content_type.to_owned()));
    Some(StoredAnswer { status, headers, body: String::from_utf8(body).ok()? })
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
    cost_usd: Option<Usd>,
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
            duration_ms: now().saturating_sub(started),
        };
        if let Ok(text) = serde_json::to_string(&line) {
            worker::console_log!("{text}");
        }
    }
}
