//! `POST /{provider}/{rest}`: a provider-native call. Authenticate (the SDK's key header) → check
//! the path → read what the request asks → reserve the provider's limits → call AI Gateway (the
//! same provider only, retrying transient faults) → relay → settle the cost → respond.
//!
//! Answers are the provider's own, byte for byte, with the decision headers added. Errors the
//! Worker makes itself are OpenAI-shaped (every SDK maps them by status); an error status from
//! the provider is passed on in the provider's own shape (redacted), so its SDK raises what it
//! would have raised talking to the provider directly.

use std::time::Duration;

use gateway_core::config::{GatewayConfig, ProviderLimits};
use gateway_core::error::{redact, ErrorKind, GatewayError};
use gateway_core::gateway::{self, Caller};
use gateway_core::limits::Refusal;
use gateway_core::native::credentials::{self, Credentials};
use gateway_core::native::shape::Shape;
use gateway_core::native::stream::{NativeStream, StreamTally};
use gateway_core::native::usage::{self, NativeUsage};
use gateway_core::native::{self, NativePath, Provider};
use gateway_core::pricing::Usd;
use gateway_core::retry::{self, Next};
use gateway_core::upstream::{self as up, AttemptOutcome};
use serde::Serialize;
use worker::{Context, Delay, Env, Request, Response, ResponseBuilder, Result};

use crate::context::Ctx;
use crate::limits::{self, Reservation};
use crate::native_stream::{NativeRelay, OpenFault};
use crate::respond::{error_response_with, Decision};
use crate::routes::chat::{outcome_label, read_body, refusal_label};
use crate::upstream::{self, header, SendError};

/// Error bodies are read this far, no further.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// Caller headers a provider's API reads besides the body and the key (versions, beta flags).
const PASSED_HEADERS: [&str; 3] = ["anthropic-version", "anthropic-beta", "openai-beta"];

pub async fn handle(mut req: Request, env: &Env, wctx: &Context, ctx: &Ctx, provider: Provider) -> Result<Response> {
    let started = now();
    let mut decision = Decision { provider: Some(provider.slug().to_owned()), ..Decision::default() };
    let mut log = NativeLog { provider: provider.slug(), ..NativeLog::default() };
    let outcome = serve(&mut req, env, wctx, ctx, provider, &mut decision, &mut log, started).await;
    match outcome {
        Ok(response) => Ok(response),
        Err(failure) => {
            // Nothing was answered, so nothing was billed (a malformed answer already said otherwise).
            decision.charged.get_or_insert(gateway_core::pricing::Usd::ZERO);
            let status = match &failure {
                Failure::Gateway(err) => err.status(),
                Failure::Provider(p) => p.status,
            };
            log.status = status;
            log.error = Some(match &failure {
                Failure::Gateway(err) => err.kind.code(),
                Failure::Provider(_) => "upstream_error",
            });
            log.finish(&decision, started, None);
            match failure {
                Failure::Gateway(err) => error_response_with(&err, None, &decision),
                Failure::Provider(p) => Ok(p.into_response(&decision)),
            }
        }
    }
}

/// Why a native call produced no answer.
enum Failure {
    /// The Worker's own error (OpenAI shape).
    Gateway(GatewayError),
    /// The provider's error answer, passed on.
    Provider(ProviderError),
}

impl From<GatewayError> for Failure {
    fn from(err: GatewayError) -> Failure {
        Failure::Gateway(err)
    }
}

/// A provider's error answer: its status, its (redacted, bounded) body, its content type.
struct ProviderError {
    status: u16,
    body: String,
    content_type: Option<String>,
    retry_after: Option<String>,
}

impl ProviderError {
    fn into_response(self, decision: &Decision) -> Response {
        let headers = decision.headers();
        let _ = headers.set("content-type", self.content_type.as_deref().unwrap_or("application/json"));
        if let Some(r) = &self.retry_after {
            let _ = headers.set("retry-after", r);
        }
        ResponseBuilder::new().with_status(self.status).with_headers(headers).fixed(self.body.into_bytes())
    }
}

/// Everything one request's attempts share.
struct Call<'a> {
    wctx: &'a Context,
    ctx: &'a Ctx,
    provider: Provider,
    shape: Shape,
    url: String,
    headers: Vec<(&'static str, String)>,
    caller: Caller,
    body: Vec<u8>,
    credentials: Credentials,
    /// Whether the model has a price. Without one nothing can be reserved or known, so no
    /// `x-gateway-cost-usd` is sent (rather than a `0` that would read as free).
    priced: bool,
    started: u64,
}

enum Attempt {
    Answered(Response),
    Failed { outcome: AttemptOutcome, failure: Failure },
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    req: &mut Request,
    env: &Env,
    wctx: &Context,
    ctx: &Ctx,
    provider: Provider,
    decision: &mut Decision,
    log: &mut NativeLog,
    started: u64,
) -> std::result::Result<Response, Failure> {
    let settings = &ctx.settings;
    let req_headers = req.headers().clone();
    let header_of = |name: &str| req_headers.get(name).ok().flatten();
    let credentials = credentials::authenticate(
        header_of,
        settings.agent_token.as_ref().map(|t| t.expose()),
        settings.allow_caller_provider_keys,
    )?;
    let url = req.url().map_err(|e| GatewayError::new(ErrorKind::InvalidRequest, e.to_string()))?;
    let path = NativePath::parse(url.path(), url.query())?;
    let config = ctx.config()?;
    let limits = provider_limits(config, provider)?;
    let body = read_body(req, settings.max_body_bytes).await?;
    let shape = Shape::read(&path, &body)?;
    let caller =
        Caller::from_headers(header_of("x-agent-name").as_deref(), header_of("x-github-repository").as_deref())?;
    decision.model = shape.model.clone();
    log.model = shape.model.clone();
    log.stream = shape.stream.is_some();
    log.agent = caller.agent.clone();
    log.repository = caller.repository.clone();

    let mut headers: Vec<(&'static str, String)> =
        PASSED_HEADERS.iter().filter_map(|&name| header_of(name).map(|v| (name, v))).collect();
    headers.extend(credentials.forward.iter().cloned());
    headers.extend(native::cache::headers(header_of));
    let priced_worst_case = shape.worst_case(&ctx.prices, provider, body.len(), &config.estimates);
    let priced = priced_worst_case.is_some();
    let worst_case = priced_worst_case.unwrap_or_else(|| {
        worker::console_warn!(
            "no price for {}/{}: the budget cannot be enforced for this call (reserved 0)",
            provider.slug(),
            shape.model.as_deref().unwrap_or("an unnamed model")
        );
        Usd::ZERO
    });
    let call = Call {
        wctx,
        ctx,
        provider,
        url: path.upstream_url(settings)?,
        shape,
        headers,
        caller,
        body,
        credentials,
        priced,
        started,
    };
    call.run(env, config, limits, worst_case, decision, log).await
}

fn provider_limits(config: &GatewayConfig, provider: Provider) -> std::result::Result<&ProviderLimits, GatewayError> {
    config.providers.get(provider.slug()).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::NotFound,
            format!(
                "Provider `{}` is not configured on this gateway: add it under `providers` in gateway.config.json \
                 with its rate limit and daily budget.",
                provider.slug()
            ),
        )
    })
}

impl Call<'_> {
    /// Attempts on the one provider: reserve, call, and on a transient failure wait and retry.
    async fn run(
        &self,
        env: &Env,
        config: &GatewayConfig,
        limits: &ProviderLimits,
        worst_case: Usd,
        decision: &mut Decision,
        log: &mut NativeLog,
    ) -> std::result::Result<Response, Failure> {
        let deadline = self.started + u64::from(self.ctx.settings.request_deadline_ms);
        let mut tries = 0;
        loop {
            let remaining = deadline.saturating_sub(now());
            if remaining == 0 {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamTimeout,
                    "The request's deadline passed before the provider answered.",
                )
                .into());
            }
            let reservation = match limits::reserve(env, self.provider.slug(), limits, worst_case).await {
                Ok(r) => r,
                Err(refusal) => {
                    decision.trace.push(format!("{}=skipped:{}", self.target(), refusal_label(&refusal)));
                    return Err(over_limits(self.provider, &refusal).into());
                }
            };
            tries += 1;
            decision.attempts += 1;
            decision.log_id = None;
            decision.cache_status = None;
            let first_byte = remaining.min(u64::from(self.ctx.settings.first_byte_timeout_ms));
            match self.attempt(reservation, first_byte, decision, log).await {
                Attempt::Answered(response) => return Ok(response),
                Attempt::Failed { outcome, failure } => {
                    decision.trace.push(format!("{}={}", self.target(), outcome_label(outcome)));
                    let retry_after = match &failure {
                        Failure::Gateway(e) => e.retry_after.clone(),
                        Failure::Provider(p) => p.retry_after.clone(),
                    };
                    let wait = retry::retry_after_ms(retry_after.as_deref());
                    let remaining = deadline.saturating_sub(now());
                    // Native calls never switch providers: "next target" means give up here.
                    match retry::after_failure(outcome, tries, wait, remaining, &config.retry, js_sys::Math::random()) {
                        Next::RetrySame { delay_ms } => Delay::from(Duration::from_millis(delay_ms)).await,
                        Next::NextTarget | Next::Stop => return Err(failure),
                    }
                }
            }
        }
    }

    fn target(&self) -> String {
        format!("{}/{}", self.provider.slug(), self.shape.model.as_deref().unwrap_or("-"))
    }

    /// One call to AI Gateway, holding `reservation` until the cost is known.
    async fn attempt(
        &self,
        reservation: Reservation,
        first_byte_ms: u64,
        decision: &mut Decision,
        log: &mut NativeLog,
    ) -> Attempt {
        let settings = &self.ctx.settings;
        let secrets = self.ctx.secrets();
        let mut call_headers =
            gateway::chat_headers(settings, gateway::metadata(&self.caller, Some("native"), decision.attempts));
        // Native calls always go to the gateway's own URL (GATEWAY_ENDPOINT only picks the
        // unified route's endpoint), so only the gateway's credentials apply.
        call_headers.retain(|(name, _)| !matches!(*name, "authorization" | "cf-aig-gateway-id"));
        call_headers.extend(self.headers.iter().cloned());

        let first_byte = Duration::from_millis(first_byte_ms);
        let (mut response, controller) = match upstream::post(&self.url, &call_headers, &self.body, first_byte).await {
            Ok(answer) => answer,
            Err(e) => {
                self.wctx.wait_until(reservation.release());
                let (outcome, err) = match e {
                    SendError::Timeout => (
                        AttemptOutcome::Timeout,
                        GatewayError::new(
                            ErrorKind::UpstreamTimeout,
                            format!("{} did not answer within {} ms.", self.provider.slug(), first_byte.as_millis()),
                        ),
                    ),
                    SendError::Connection(message) => (
                        AttemptOutcome::ConnectionError,
                        GatewayError::new(
                            ErrorKind::UpstreamUnreachable,
                            format!("AI Gateway could not be reached: {}", redact(&message, &secrets)),
                        ),
                    ),
                };
                return Attempt::Failed { outcome, failure: err.into() };
            }
        };
        decision.log_id = header(&response, "cf-aig-log-id");
        decision.cache_status = header(&response, "cf-aig-cache-status");
        let cache_hit = decision.cache_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HIT"));
        let status = response.status_code();
        let content_type = header(&response, "content-type");

        if !(200..300).contains(&status) {
            let body = upstream::read_limited(&mut response, ERROR_BODY_LIMIT).await;
            self.wctx.wait_until(reservation.release());
            let retry_after = header(&response, "retry-after");
            let outcome = AttemptOutcome::Status(status);
            // 401/403 with only the Worker's credentials sent: AI Gateway refused CF_AIG_TOKEN,
            // the operator's problem (502), not the caller's key.
            if matches!(status, 401 | 403) && self.credentials.forward.is_empty() {
                let err = up::error_from_upstream(status, &body, retry_after, self.provider.slug(), &secrets);
                return Attempt::Failed { outcome, failure: err.into() };
            }
            let failure = Failure::Provider(ProviderError {
                status,
                body: redact(&String::from_utf8_lossy(&body), &secrets),
                content_type,
                retry_after: retry_after
                    .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b" ,:".contains(&b))),
            });
            return Attempt::Failed { outcome, failure };
        }

        let Some(framing) = self.shape.stream else {
            let bytes = response.bytes().await.unwrap_or_default();
            return match usage::read_answer(self.shape.wire, &bytes) {
                Ok(answer) => {
                    let cost = self.cost(answer.model.as_deref(), answer.usage, cache_hit);
                    // x-gateway-cost-usd is what the budget was charged (the worst case when unknown).
                    let charged = decision.charged.unwrap_or_default().saturating_add(reservation.charge(cost));
                    decision.charged = (self.priced || cache_hit).then_some(charged);
                    self.wctx.wait_until(reservation.settle(cost));
                    decision.trace.push(format!("{}={status}", self.target()));
                    log.status = status;
                    log.cost_usd = cost;
                    log.finish(decision, self.started, answer.usage);
                    Attempt::Answered(answer_response(status, content_type, bytes, decision))
                }
                Err(err) => {
                    // An answer we cannot read may still have been billed: charge the worst case.
                    let charged = decision.charged.unwrap_or_default().saturating_add(reservation.charge(None));
                    decision.charged = Some(charged);
                    self.wctx.wait_until(reservation.settle(None));
                    Attempt::Failed { outcome: AttemptOutcome::MalformedAnswer, failure: err.into() }
                }
            };
        };

        let bytes = match response.stream() {
            Ok(b) => b,
            Err(e) => {
                self.wctx.wait_until(reservation.release());
                let err = GatewayError::new(ErrorKind::UpstreamMalformed, e.to_string());
                return Attempt::Failed { outcome: AttemptOutcome::MalformedAnswer, failure: err.into() };
            }
        };
        let idle = Duration::from_millis(settings.stream_idle_timeout_ms.into());
        let mut relay = NativeRelay::new(bytes, NativeStream::new(self.shape.wire, framing), idle, controller);
        match relay.open().await {
            Ok(held) => {
                decision.trace.push(format!("{}={status}", self.target()));
                log.status = status;
                let end = StreamEnd {
                    provider: self.provider,
                    model: self.shape.model.clone(),
                    prices: self.ctx.prices.clone(),
                    cache_hit,
                    reservation,
                    log: std::mem::take(log),
                    decision: decision.clone(),
                    started: self.started,
                };
                Attempt::Answered(stream_response(relay, held, content_type, decision, end))
            }
            Err(fault) => {
                // Nothing reached the client and no content came: the attempt is released.
                self.wctx.wait_until(reservation.release());
                let (outcome, err) = match fault {
                    OpenFault::Stalled => (
                        AttemptOutcome::Timeout,
                        GatewayError::new(
                            ErrorKind::UpstreamTimeout,
                            format!(
                                "{} stalled before its first token ({} ms).",
                                self.provider.slug(),
                                idle.as_millis()
                            ),
                        ),
                    ),
                    OpenFault::Fault(fault) => (
                        AttemptOutcome::StreamCutBeforeContent,
                        GatewayError::new(ErrorKind::UpstreamMalformed, redact(&fault.describe(), &secrets)),
                    ),
                };
                Attempt::Failed { outcome, failure: err.into() }
            }
        }
    }

    fn cost(&self, answer_model: Option<&str>, usage: Option<NativeUsage>, cache_hit: bool) -> Option<Usd> {
        if cache_hit {
            return Some(Usd::ZERO);
        }
        native_cost(&self.ctx.prices, self.provider, self.shape.model.as_deref(), answer_model, usage)
    }
}

fn native_cost(
    prices: &gateway_core::pricing::Prices,
    provider: Provider,
    request_model: Option<&str>,
    answer_model: Option<&str>,
    usage: Option<NativeUsage>,
) -> Option<Usd> {
    let cost = usage::cost(prices, provider, request_model, answer_model, usage);
    if let Some(warning) = &cost.warning {
        worker::console_warn!("{warning}");
    }
    cost.usd
}

fn over_limits(provider: Provider, refusal: &Refusal) -> GatewayError {
    let mut err = GatewayError::new(
        ErrorKind::LimitsExhausted,
        format!("{} is over this gateway's limits: {}.", provider.slug(), refusal.message),
    );
    err.retry_after = Some(refusal.retry_after_secs.to_string());
    err
}

fn answer_response(status: u16, content_type: Option<String>, body: Vec<u8>, decision: &Decision) -> Response {
    let headers = decision.headers();
    let _ = headers.set("content-type", content_type.as_deref().unwrap_or("application/json"));
    ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body)
}

/// What the end of a stream needs to settle and log.
struct StreamEnd {
    provider: Provider,
    model: Option<String>,
    prices: std::rc::Rc<gateway_core::pricing::Prices>,
    cache_hit: bool,
    reservation: Reservation,
    log: NativeLog,
    decision: Decision,
    started: u64,
}

fn stream_response(
    relay: NativeRelay,
    held: Vec<u8>,
    content_type: Option<String>,
    decision: &Decision,
    end: StreamEnd,
) -> Response {
    let headers = decision.headers();
    let _ = headers.set("content-type", content_type.as_deref().unwrap_or("text/event-stream"));
    let _ = headers.set("cache-control", "no-cache");
    let body = relay.into_body(held, move |tally: StreamTally, fault: Option<GatewayError>| async move {
        let StreamEnd { provider, model, prices, cache_hit, reservation, mut log, decision, started } = end;
        // A stream cut after content was billed for something we cannot see: the worst case.
        let cost = match (&fault, cache_hit) {
            (Some(_), _) => None,
            (None, true) => Some(Usd::ZERO),
            (None, false) => native_cost(&prices, provider, model.as_deref(), tally.model.as_deref(), tally.usage),
        };
        reservation.settle(cost).await;
        log.error = fault.as_ref().map(|f| f.kind.code());
        log.cost_usd = cost;
        log.finish(&decision, started, tally.usage);
    });
    ResponseBuilder::new().with_status(200).with_headers(headers).from_stream(body).unwrap_or_else(|e| {
        let err = GatewayError::new(ErrorKind::Internal, e.to_string());
        ResponseBuilder::new().with_status(500).fixed(err.to_json().into_bytes())
    })
}

/// One structured log line per native call: what was decided, never a secret or prompt text.
#[derive(Debug, Default, Serialize)]
struct NativeLog {
    status: u16,
    provider: &'static str,
    model: Option<String>,
    stream: bool,
    agent: Option<String>,
    repository: Option<String>,
    error: Option<&'static str>,
    cost_usd: Option<Usd>,
}

impl NativeLog {
    fn finish(&self, decision: &Decision, started: u64, usage: Option<NativeUsage>) {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'static str,
            #[serde(flatten)]
            call: &'a NativeLog,
            attempts: u32,
            trace: &'a [String],
            log_id: Option<&'a str>,
            cache: Option<&'a str>,
            input_tokens: Option<u64>,
            cached_input_tokens: Option<u64>,
            output_tokens: Option<u64>,
            duration_ms: u64,
        }
        let line = Line {
            event: "native_call",
            call: self,
            attempts: decision.attempts,
            trace: &decision.trace,
            log_id: decision.log_id.as_deref(),
            cache: decision.cache_status.as_deref(),
            input_tokens: usage.map(|u| u.tokens.input),
            cached_input_tokens: usage.map(|u| u.tokens.cached_input),
            output_tokens: usage.map(|u| u.tokens.output),
            duration_ms: now().saturating_sub(started),
        };
        if let Ok(text) = serde_json::to_string(&line) {
            worker::console_log!("{text}");
        }
    }
}

fn now() -> u64 {
    worker::Date::now().as_millis()
}
