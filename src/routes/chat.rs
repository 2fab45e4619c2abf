//! `POST /v1/chat/completions`: read → plan → the engine (reserve, call AI Gateway, retry or
//! fall back, close the books) → respond, the stream's books closed when it ends.

use std::rc::Rc;

use gateway_core::aig::cache::CallerCache;
use gateway_core::aig::call;
use gateway_core::config::RequestFacts;
use gateway_core::engine::Fallback;
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::idempotency::{IdempotencyKey, StoredAnswer, MAX_STORED_BYTES};
use gateway_core::ledger::Route;
use gateway_core::money::stamp::stamp_usage_cost;
use gateway_core::plan::plan;
use gateway_core::protocol::unified::Unified;
use gateway_core::request::authenticate::{Identity, Partition};
use gateway_core::request::ChatRequest;
use gateway_core::tools::{memory, ToolFamily};

use worker::{Context, Env, Response, Result};

use super::epilogue::{AfterStream, Epilogue};
use crate::aig::runtime::{now, AigRuntime, AnswerBody};
use crate::context::Ctx;
use crate::durable::idempotency::{self, Claimed};
use crate::incoming::Incoming;
use crate::respond::error_response_with;

const STREAM_TYPE: &str = "text/event-stream; charset=utf-8";

pub async fn handle(
    req: Incoming,
    env: &Env,
    wctx: &Rc<Context>,
    ctx: &Ctx,
    identity: Option<Identity<'_>>,
) -> Result<Response> {
    let mut epilogue = Epilogue::new(env, wctx, Route::Chat, now());
    // The route table makes this route authenticated before it gets here; if it ever were not,
    // refuse rather than serve anyone.
    let Some(identity) = identity else {
        let err = GatewayError::new(ErrorKind::Internal, "the chat route was reached unauthenticated");
        return error_response_with(&err, None, &epilogue.outcome.headers());
    };
    match serve(&req, env, wctx, ctx, &identity, &mut epilogue).await {
        Ok(response) => Ok(response),
        Err(err) => epilogue.error(&err),
    }
}

async fn serve(
    req: &Incoming,
    env: &Env,
    wctx: &Rc<Context>,
    ctx: &Ctx,
    identity: &Identity<'_>,
    epilogue: &mut Epilogue<'_>,
) -> std::result::Result<Response, GatewayError> {
    let started = now();
    // A scoped token's own copy of the settings, so that it is redacted as the secrets are.
    let settings = ctx.settings.for_identity(identity);
    let settings = &*settings;
    let config = ctx.config()?;
    let body = req.read_body(settings.max_body_bytes).await?;
    let chat = ChatRequest::parse(&body)?;
    let header_of = |name: &str| req.header(name);
    let caller = identity.caller(header_of("x-agent-name").as_deref(), header_of("x-github-repository").as_deref())?;
    let (skip_cache, cache_control, scope) =
        (header_of("cf-aig-skip-cache"), header_of("cache-control"), header_of("x-gateway-cache-scope"));
    let caller_cache = CallerCache::from_headers(skip_cache.as_deref(), cache_control.as_deref(), scope.as_deref())?;
    let deadline = started + u64::from(settings.request_deadline_ms);
    // Whose records (idempotent replays, remembered signatures) this request may read back.
    let partition = Partition::of(identity, settings.agent_token.as_ref().map(|t| t.expose()));
    let key = IdempotencyKey::from_headers(
        header_of("idempotency-key").as_deref(),
        header_of("x-github-delivery").as_deref(),
        &body,
        &partition,
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
    let budget_used = crate::aig::runtime::budget_use::permille();
    let facts = RequestFacts {
        input_tokens: prompt_tokens,
        has_tools: chat.has_tools(),
        agent: caller.agent.as_deref(),
        stream: chat.stream,
        budget_used: Some(&budget_used),
    };
    let plan = plan(config, &ctx.prices, &chat.model, &facts, js_sys::Math::random())?;
    let outcome = &mut epilogue.outcome;
    (outcome.alias, outcome.stream, outcome.agent, outcome.repository) =
        (plan.alias.map(str::to_owned), chat.stream, caller.agent.clone(), caller.repository.clone());
    outcome.targets = plan.targets.iter().map(|t| (t.provider().to_owned(), t.model().to_owned())).collect();

    let route_max_output = config.max_output_tokens(plan.alias);
    let max_output = chat.max_output_tokens.unwrap_or(route_max_output);
    let targets = plan.engine_targets(config, &ctx.prices, prompt_tokens, max_output)?;
    let url = call::chat_url(settings)?;
    // What of the caller's signature memory the history needs (a D1 read only when the history
    // brings calls back without their signatures and a target is Gemini 3).
    let caller_key = partition.as_str().to_owned();
    let remembered = match chat.tool_history() {
        Some(history) => {
            let families: Vec<ToolFamily> =
                plan.targets.iter().map(|t| ToolFamily::of(t.provider(), t.model())).collect();
            let keys = memory::lookup_keys(&caller_key, &families, history.unsigned_first_calls());
            crate::signatures::recall(env, &keys, now()).await
        }
        None => Vec::new(),
    };
    let protocol = Unified {
        settings,
        url: &url,
        chat: &chat,
        targets: &plan.targets,
        prices: ctx.prices.clone(),
        worst_cases: targets.iter().map(|t| t.worst_case).collect(),
        caller: &caller,
        alias: plan.alias,
        cache: plan.cache,
        caller_cache,
        output_limit: route_max_output,
        remembered,
    };
    let subject = plan.alias.map_or_else(|| "the requested model".to_owned(), |a| format!("route `{a}`"));
    let scopes = config.scopes.of(caller.agent.as_deref(), caller.repository.as_deref());
    let runtime =
        AigRuntime::new(env, wctx, settings, protocol, &targets, deadline, claim.as_ref().map(|_| MAX_STORED_BYTES))
            .with_scopes(scopes);
    let ran = runtime.run(&config.retry, Fallback::NextTarget, &subject).await;
    // The request's own warning (a schema not checked in full), then its answers'.
    let warnings = chat.response_format.as_ref().and_then(|c| c.warning()).into_iter().chain(ran.warnings).collect();
    epilogue.ran(ran.record, ran.budget_remaining, warnings, ran.settled);
    let win = match ran.result {
        Ok(win) => win,
        Err(err) => {
            if let Some(claim) = claim {
                wctx.wait_until(claim.abort());
            }
            return Err(err);
        }
    };
    let answered = win.answer;
    let answering = &plan.targets[win.target];
    let (provider, model) = (answering.provider().to_owned(), answering.model().to_owned());
    match (answered.body, win.open) {
        (AnswerBody::Whole { bytes, copy }, _) => {
            let records = memory::to_remember(&caller_key, &provider, &model, &ran.signatures, now());
            if !records.is_empty() {
                let env = env.clone();
                wctx.wait_until(async move { crate::signatures::remember(&env, records).await });
            }
            let content_type = if chat.stream { STREAM_TYPE } else { "application/json" };
            // A JSON answer says what it cost inside `usage` too (a stream's usage event
            // already does: its relay wrote it in).
            let bytes = match (chat.stream, epilogue.outcome.charged()) {
                (false, Some(cost)) => stamp_usage_cost(&bytes, cost).unwrap_or(bytes),
                _ => bytes,
            };
            if let Some(claim) = claim {
                let kept = if chat.stream { copy } else { Some(bytes.clone()) };
                let headers = epilogue.outcome.headers();
                match kept.and_then(|b| stored_answer(answered.status, headers, content_type, b)) {
                    Some(answer) => wctx.wait_until(claim.complete(answer)),
                    None => wctx.wait_until(claim.abort()),
                }
            }
            Ok(epilogue.whole(answered.status, content_type, bytes))
        }
        (AnswerBody::Stream { upstream }, Some(reservation)) => {
            let env = env.clone();
            let after: AfterStream = Box::new(move |ended, headers| {
                Box::pin(async move {
                    let records = memory::to_remember(&caller_key, &provider, &model, &ended.signatures, now());
                    crate::signatures::remember(&env, records).await;
                    if let Some(claim) = claim {
                        match ended.copy.and_then(|c| stored_answer(200, headers, STREAM_TYPE, c)) {
                            Some(answer) => claim.complete(answer).await,
                            None => claim.abort().await,
                        }
                    }
                })
            });
            let worst = targets[win.target].worst_case;
            Ok(epilogue.stream(answered.status, STREAM_TYPE, upstream, reservation, worst, Some(after)))
        }
        (AnswerBody::Stream { .. }, None) => {
            Err(GatewayError::new(ErrorKind::Internal, "a stream without its reservation"))
        }
    }
}

/// An answer as kept for idempotent replays; `None` when the body is not UTF-8 text (then it is
/// not kept, and a repeat runs again).
fn stored_answer(
    status: u16,
    mut headers: Vec<(String, String)>,
    content_type: &str,
    body: Vec<u8>,
) -> Option<StoredAnswer> {
    headers.push(("content-type".to_owned(), content_type.to_owned()));
    Some(StoredAnswer { status, headers, body: String::from_utf8(body).ok()? })
}
