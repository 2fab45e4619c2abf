//! `POST /{provider}/{rest}`: a provider-native call. Authenticate (the SDK's key header) → check
//! the path → read what the request asks → the engine (the same provider only) → respond.
//!
//! Answers are the provider's own, byte for byte, with the decision headers added. Errors the
//! Worker makes itself are OpenAI-shaped (every SDK maps them by status); an error status from
//! the provider is passed on in the provider's own shape (redacted), so its SDK raises what it
//! would have raised talking to the provider directly.

use std::rc::Rc;

use gateway_core::account::limits::Policy;
use gateway_core::config::GatewayConfig;
use gateway_core::engine::{Fallback, Target};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::ledger::{self, Route};
use gateway_core::money::pricing::Usd;
use gateway_core::native::credentials;
use gateway_core::native::shape::Shape;
use gateway_core::native::{self, NativePath};
use gateway_core::provider::Provider;

use worker::{Context, Env, Response, Result};

use crate::aig::runtime::{close_stream, now, AigRuntime, AnswerBody};
use crate::context::Ctx;
use crate::incoming::Incoming;
use crate::log::RequestLog;
use crate::respond::{answer_response, error_response_with, provider_error_response, stream_response, Decision};
use gateway_core::protocol::native::{Failure, Native};

/// Caller headers a provider's API reads besides the body and the key (versions, beta flags).
const PASSED_HEADERS: [&str; 3] = ["anthropic-version", "anthropic-beta", "openai-beta"];

pub async fn handle(req: Incoming, env: &Env, wctx: &Rc<Context>, ctx: &Ctx, provider: Provider) -> Result<Response> {
    let started = now();
    let mut decision = Decision { provider: Some(provider.slug().to_owned()), ..Decision::default() };
    let mut log = RequestLog { event: "native_call", ..RequestLog::default() };
    match serve(&req, env, wctx, ctx, provider, &mut decision, &mut log).await {
        Ok(response) => Ok(response),
        Err(failure) => {
            log.cost_usd = Some(*decision.charged.get_or_insert(Usd::ZERO));
            (log.status, log.error) = match &failure {
                Failure::Gateway(err) => (err.status(), Some(err.kind.code())),
                Failure::Provider(p) => (p.status, Some("upstream_error")),
            };
            log.finish(&decision, started);
            match failure {
                Failure::Gateway(err) => error_response_with(&err, None, &decision),
                Failure::Provider(p) => Ok(provider_error_response(p, &decision)),
            }
        }
    }
}

async fn serve(
    req: &Incoming,
    env: &Env,
    wctx: &Rc<Context>,
    ctx: &Ctx,
    provider: Provider,
    decision: &mut Decision,
    log: &mut RequestLog,
) -> std::result::Result<Response, Failure> {
    let started = now();
    let header_of = |name: &str| req.header(name);
    let credentials =
        credentials::authenticate(header_of, ctx.settings.agent_tokens(), ctx.settings.allow_caller_provider_keys)?;
    // A scoped token's own copy of the settings, so that it is redacted as the secrets are.
    let settings = ctx.settings.for_identity(&credentials.identity);
    let settings = &*settings;
    let path = NativePath::parse(req.path(), req.query())?;
    let config = ctx.config()?;
    let limits = provider_limits(config, provider)?;
    let body = req.read_body(settings.max_body_bytes).await?;
    let shape = Shape::read(&path, &body)?;
    let caller = credentials
        .identity
        .caller(header_of("x-agent-name").as_deref(), header_of("x-github-repository").as_deref())?;
    decision.model = shape.model.clone();
    (log.stream, log.agent, log.repository) = (shape.stream.is_some(), caller.agent.clone(), caller.repository.clone());

    let mut headers: Vec<(&'static str, String)> =
        PASSED_HEADERS.iter().filter_map(|&name| header_of(name).map(|v| (name, v))).collect();
    headers.extend(credentials.forward.iter().cloned());
    headers.extend(native::cache::headers(header_of));
    // Without a price nothing can be reserved or known: no `x-gateway-cost-usd` (rather than a
    // `0` that would read as free).
    let priced_worst_case = shape.worst_case(&ctx.prices, provider, body.len(), &config.estimates);
    let worst_case = priced_worst_case.unwrap_or_else(|| {
        worker::console_warn!(
            "no price for {}/{}: the budget cannot be enforced for this call (reserved 0)",
            provider.slug(),
            shape.model.as_deref().unwrap_or("an unnamed model")
        );
        Usd::ZERO
    });
    let id = format!("{}/{}", provider.slug(), shape.model.as_deref().unwrap_or("-"));
    let targets = [Target { id: &id, provider: provider.slug(), limits: *limits, worst_case }];
    let upstream_url = path.upstream_url(settings)?;
    let protocol = Native {
        settings,
        url: &upstream_url,
        provider,
        shape: &shape,
        body: &body,
        caller: &caller,
        headers,
        caller_key: !credentials.forward.is_empty(),
        prices: ctx.prices.clone(),
    };
    let deadline = started + u64::from(settings.request_deadline_ms);
    let scopes = config.scopes.of(caller.agent.as_deref(), caller.repository.as_deref());
    let runtime = AigRuntime::new(env, wctx, settings, protocol, &targets, deadline, None).with_scopes(scopes);
    let ran = runtime.run(&config.retry, Fallback::SameTargetOnly, provider.slug()).await;
    let (result, record, settled) = (ran.result, ran.record, ran.settled);
    let answered_model = ran.meters.last().and_then(|m| m.answered_model.clone());
    *decision = Decision {
        provider: Some(provider.slug().to_owned()),
        model: answered_model.or_else(|| shape.model.clone()),
        request_id: Some(crate::ledger::new_request_id(started)),
        budget_remaining: ran.budget_remaining,
        warnings: ran.warnings,
        ..Decision::of(&record, &targets, ran.seen, None)
    };
    let request_id = decision.request_id.clone().unwrap_or_default();
    let facts = ledger::RequestFacts {
        request_id: &request_id,
        route: Route::Native,
        alias: None,
        agent: caller.agent.as_deref(),
        repository: caller.repository.as_deref(),
        stream: shape.stream.is_some(),
    };
    let rows = ledger::rows(&facts, &targets, &record, &ran.meters);
    let cache_hit = decision.cache_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HIT"));
    let win = match result {
        Ok(win) => win,
        Err(failure) => {
            crate::ledger::write_later(env, wctx, rows, settled);
            return Err(failure);
        }
    };
    if priced_worst_case.is_none() && !cache_hit {
        decision.charged = None;
    }
    let answered = win.answer;
    log.status = answered.status;
    let content_type = answered.content_type.as_deref();
    match (answered.body, win.open) {
        (AnswerBody::Whole { bytes, .. }, _) => {
            crate::ledger::write_later(env, wctx, rows, settled);
            log.cost_usd = Some(record.charged);
            log.finish(decision, started);
            let default = if shape.stream.is_some() { "text/event-stream" } else { "application/json" };
            Ok(answer_response(answered.status, content_type.unwrap_or(default), bytes, decision))
        }
        (AnswerBody::Stream { upstream }, Some(reservation)) => {
            let (end_decision, mut log, charged) = (decision.clone(), std::mem::take(log), record.charged);
            let env = env.clone();
            let on_end: crate::relay::OnEnd = Box::new(move |ended| {
                Box::pin(async move {
                    let cost = close_stream(&env, reservation, &ended, worst_case, charged, rows, settled).await;
                    log.error = ended.fault.as_ref().map(|f| f.kind.code());
                    log.cost_usd = Some(cost);
                    log.finish(&end_decision, started);
                })
            });
            let body = upstream.into_body(wctx.clone(), on_end);
            Ok(stream_response(answered.status, content_type.unwrap_or("text/event-stream"), decision, body))
        }
        (AnswerBody::Stream { .. }, None) => {
            Err(GatewayError::new(ErrorKind::Internal, "a stream without its reservation").into())
        }
    }
}

fn provider_limits(config: &GatewayConfig, provider: Provider) -> std::result::Result<&Policy, GatewayError> {
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
