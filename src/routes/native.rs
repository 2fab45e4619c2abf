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
use gateway_core::ledger::Route;
use gateway_core::money::pricing::Usd;
use gateway_core::native::credentials;
use gateway_core::native::shape::Shape;
use gateway_core::native::{self, NativePath};
use gateway_core::provider::Provider;

use worker::{Context, Env, Response, Result};

use super::epilogue::Epilogue;
use crate::aig::runtime::{now, AigRuntime, AnswerBody};
use crate::context::Ctx;
use crate::incoming::Incoming;
use gateway_core::protocol::native::{Failure, Native};

/// Caller headers a provider's API reads besides the body and the key (versions, beta flags).
const PASSED_HEADERS: [&str; 3] = ["anthropic-version", "anthropic-beta", "openai-beta"];

pub async fn handle(req: Incoming, env: &Env, wctx: &Rc<Context>, ctx: &Ctx, provider: Provider) -> Result<Response> {
    let mut epilogue = Epilogue::new(env, wctx, Route::Native, now());
    epilogue.outcome.provider = Some(provider.slug().to_owned());
    match serve(&req, env, wctx, ctx, provider, &mut epilogue).await {
        Ok(response) => Ok(response),
        Err(Failure::Gateway(err)) => epilogue.error(&err),
        Err(Failure::Provider(p)) => Ok(epilogue.provider_error(p)),
    }
}

async fn serve(
    req: &Incoming,
    env: &Env,
    wctx: &Rc<Context>,
    ctx: &Ctx,
    provider: Provider,
    epilogue: &mut Epilogue<'_>,
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
    let outcome = &mut epilogue.outcome;
    outcome.model = shape.model.clone();
    (outcome.stream, outcome.agent, outcome.repository) =
        (shape.stream.is_some(), caller.agent.clone(), caller.repository.clone());

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
    let id = format!("{}/{}", provider.slug(), shape.model.as_deref().unwrap_or(gateway_core::names::UNNAMED_MODEL));
    let targets = [Target { id: &id, provider: provider.slug(), limits: *limits, worst_case }];
    outcome.targets = vec![(provider.slug().to_owned(), targets[0].model().to_owned())];
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
    epilogue.ran(ran.record, ran.budget_remaining, ran.warnings, ran.settled);
    let win = ran.result?;
    // Without a price nothing could be reserved or known: no `x-gateway-cost-usd`.
    epilogue.outcome.unpriced = priced_worst_case.is_none();
    let answered = win.answer;
    let content_type = answered.content_type.as_deref();
    match (answered.body, win.open) {
        (AnswerBody::Whole { bytes, .. }, _) => {
            let default = if shape.stream.is_some() { "text/event-stream" } else { "application/json" };
            Ok(epilogue.whole(answered.status, content_type.unwrap_or(default), bytes))
        }
        (AnswerBody::Stream { upstream }, Some(reservation)) => {
            let content_type = content_type.unwrap_or("text/event-stream");
            Ok(epilogue.stream(answered.status, content_type, upstream, reservation, worst_case, None))
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
