//! The pipeline every inference request goes through, whatever its route and wire format:
//!
//! 1. record the request (for `GET /__sim/requests`);
//! 2. admission, route-specific ([`crate::compat`], [`crate::native`]): gateway exists, caller
//!    is authenticated, body and `cf-aig-*` headers are valid;
//! 3. the configured fixed latency;
//! 4. cache lookup (hits never reach the simulated upstream, so consume no fault);
//! 5. the upstream's own refusals: a retired model, a history its rules reject (they use no
//!    fault); a redirected model answers as the model it is redirected to;
//! 6. the next scripted fault for the provider, if any;
//! 7. the simulated model's answer in the upstream's dialect, whole or streamed, possibly broken
//!    by the fault;
//! 8. a log row (unless logging is off), the `cf-aig-*` response headers, the record's outcome.
//!
//! Refusals before authentication succeeds (unknown account or gateway, bad credentials) get no
//! log row, like on the real gateway; every later error does (unknown routes included).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, CONTENT_TYPE};
use hyper::Method;
use serde_json::Value;

use crate::answer::{Answer, Reply};
use crate::clock;
use crate::dialect::{self, Refusal};
use crate::faults::{default_status_body, AigRefusal, Fault};
use crate::formats::{openai, ChatRequest, Format, MALFORMED_BODY};
use crate::http::{gateway_error, has_bearer, header, json_response, response, set_header, ProviderTag, Resp, SimBody};
use crate::logs::{self, LogRow};
use crate::models::{self, Resolution};
use crate::state::{CacheEntry, RecordHandle, RequestRecord, State};
use crate::stream::{self, Mode, StreamPlan, STALL};

/// Longest cache TTL the gateway accepts (one month).
const MAX_CACHE_TTL: u64 = 30 * 24 * 3600;
/// Shortest `cf-aig-cache-ttl` the gateway accepts; shorter values are ignored.
const MIN_CACHE_TTL: u64 = 60;

/// An inference request, body already read.
pub struct InferenceRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub started: Instant,
    pub started_ms: i64,
}

/// What the pipeline needs to know about the gateway a request goes through.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub id: String,
    /// Default cache TTL in seconds; 0 = off.
    pub cache_ttl: u64,
    pub collect_logs: bool,
    pub authentication: bool,
}

/// `cf-aig-custom-cost`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CustomCost {
    /// USD per token.
    PerToken {
        input: f64,
        output: f64,
    },
    Total(f64),
}

/// Request-level gateway options, from the `cf-aig-*` headers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `cf-aig-metadata`, validated, kept as the JSON text that was sent.
    pub metadata: Option<String>,
    pub cache_ttl: Option<u64>,
    pub skip_cache: bool,
    pub cache_key: Option<String>,
    pub custom_cost: Option<CustomCost>,
    /// `cf-aig-collect-log`: overrides the gateway's `collect_logs`.
    pub collect_log: Option<bool>,
}

/// Where a request's log row goes and what it says about the request.
#[derive(Debug, Clone)]
pub struct Target {
    pub gateway: GatewaySettings,
    /// The log row's `path` (the part after the provider, e.g. `v1/messages`).
    pub path: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub options: Options,
}

impl Target {
    pub fn new(gateway: GatewaySettings, path: impl Into<String>) -> Self {
        Self { gateway, path: path.into(), provider: None, model: None, options: Options::default() }
    }
}

/// An admitted request: the simulated upstream will answer it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Provider and model are always set here.
    pub target: Target,
    pub format: Format,
    pub chat: ChatRequest,
}

/// A request the gateway refuses.
pub enum Rejection {
    /// Refused before authentication succeeded: no log row.
    Unlogged(Resp),
    /// Refused after authentication: logged like any answer.
    Logged(Resp, Box<Target>),
}

pub type Admission = Result<Call, Box<Rejection>>;

pub fn unlogged(resp: Resp) -> Box<Rejection> {
    Box::new(Rejection::Unlogged(resp))
}

pub fn logged(resp: Resp, target: &Target) -> Box<Rejection> {
    Box::new(Rejection::Logged(resp, Box::new(target.clone())))
}

/// The gateway named in the path, if `account` is ours and the gateway exists.
/// Error code 2001 is simulator-chosen.
pub fn gateway(state: &State, account: &str, gateway_id: &str) -> Result<GatewaySettings, Box<Rejection>> {
    if account != state.config.account_id {
        return Err(unlogged(gateway_error(404, 2001, "Gateway not found")));
    }
    gateway_by_id(state, gateway_id)
}

pub fn gateway_by_id(state: &State, gateway_id: &str) -> Result<GatewaySettings, Box<Rejection>> {
    let inner = state.lock();
    let g = inner.gateways.get(gateway_id).ok_or_else(|| unlogged(gateway_error(404, 2001, "Gateway not found")))?;
    Ok(GatewaySettings {
        id: g.id.clone(),
        cache_ttl: g.cache_ttl.unwrap_or(0),
        collect_logs: g.collect_logs,
        authentication: g.authentication,
    })
}

/// An authenticated gateway wants exactly `cf-aig-authorization: Bearer <gateway token>`.
/// With no gateway token configured there is nothing to check.
pub fn check_gateway_auth(state: &State, gateway: &GatewaySettings, headers: &HeaderMap) -> Result<(), Box<Rejection>> {
    let token = &state.config.gateway_token;
    if gateway.authentication && !token.is_empty() && !has_bearer(headers, "cf-aig-authorization", token) {
        return Err(unlogged(gateway_error(401, 2009, "Unauthorized")));
    }
    Ok(())
}

/// Reads the `cf-aig-*` request headers. Only `cf-aig-metadata` can make a request invalid;
/// unusable cache or cost headers are ignored. Deprecated names (`cf-cache-ttl`,
/// `cf-skip-cache`) are honoured like on the real gateway.
pub fn parse_options(headers: &HeaderMap) -> Result<Options, String> {
    let metadata = match header(headers, "cf-aig-metadata") {
        None => None,
        Some(raw) => Some(validate_metadata(raw)?),
    };
    let cache_ttl = header(headers, "cf-aig-cache-ttl")
        .or_else(|| header(headers, "cf-cache-ttl"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let skip_cache = header(headers, "cf-aig-skip-cache")
        .or_else(|| header(headers, "cf-skip-cache"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let collect_log =
        header(headers, "cf-aig-collect-log").and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
    Ok(Options {
        metadata,
        cache_ttl,
        skip_cache,
        cache_key: header(headers, "cf-aig-cache-key").map(str::to_string),
        custom_cost: header(headers, "cf-aig-custom-cost").and_then(parse_custom_cost),
        collect_log,
    })
}

/// A JSON object of at most 5 entries whose values are strings, numbers or booleans.
fn validate_metadata(raw: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(raw).map_err(|_| "cf-aig-metadata must be a JSON object".to_string())?;
    let object = value.as_object().ok_or("cf-aig-metadata must be a JSON object")?;
    if object.len() > 5 {
        return Err("cf-aig-metadata can have at most 5 entries".into());
    }
    if let Some((key, _)) = object.iter().find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean())) {
        return Err(format!("cf-aig-metadata value of `{key}` must be a string, number or boolean"));
    }
    Ok(raw.to_string())
}

fn parse_custom_cost(raw: &str) -> Option<CustomCost> {
    let v: Value = serde_json::from_str(raw).ok()?;
    if let Some(total) = v.get("total_cost").and_then(Value::as_f64) {
        return Some(CustomCost::Total(total));
    }
    Some(CustomCost::PerToken { input: v.get("per_token_in")?.as_f64()?, output: v.get("per_token_out")?.as_f64()? })
}

/// How a request ended, for its log row and record.
struct Outcome {
    status: u16,
    cached: bool,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
    fault: Option<&'static str>,
    /// `cf-aig-cache-status`, on answers from the (simulated) upstream or the cache.
    cache_status: Option<&'static str>,
    /// The model that answered, when not the one asked for (a redirect): the log row names it.
    answered_model: Option<String>,
}

impl Outcome {
    fn refused(status: u16) -> Self {
        Self {
            status,
            cached: false,
            tokens_in: None,
            tokens_out: None,
            fault: None,
            cache_status: None,
            answered_model: None,
        }
    }

    /// An error status from the (simulated) upstream: nothing generated, nothing cached.
    fn upstream_error(status: u16, fault: Option<&'static str>) -> Self {
        Self { cache_status: Some("MISS"), fault, ..Self::refused(status) }
    }
}

/// Runs an inference request through the pipeline; `admit` is the route-specific admission.
pub async fn handle<F>(state: &State, req: InferenceRequest, admit: F) -> Resp
where
    F: FnOnce(&State, &InferenceRequest) -> Admission,
{
    let _in_flight = state.in_flight();
    let record = state.begin_record(RequestRecord {
        seq: 0,
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        provider: None,
        model: None,
        headers: header_map(&req.headers),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        status: None,
        fault: None,
        log_id: None,
    });
    let admission = admit(state, &req);
    if state.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(state.config.latency_ms)).await;
    }
    match admission {
        Ok(call) => answer(state, &req, call, record).await,
        Err(rejection) => match *rejection {
            Rejection::Unlogged(resp) => {
                let status = resp.status().as_u16();
                state.update_record(record, |r| r.status = Some(status));
                resp
            }
            Rejection::Logged(resp, target) => {
                let outcome = Outcome::refused(resp.status().as_u16());
                finish(state, &req, &target, record, resp, outcome)
            }
        },
    }
}

/// Lower-case header names → values (repeated headers joined with ", ").
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    map
}

/// The cache key and TTL of a cacheable request, `None` when it is not cacheable: streamed
/// requests and `cf-aig-skip-cache: true` never are; otherwise `cf-aig-cache-ttl` (≥ 60 s)
/// or the gateway's default TTL (> 0) decides. The key covers gateway, route, provider, model,
/// `cf-aig-cache-key` and the exact body bytes.
fn cache_plan(req: &InferenceRequest, call: &Call) -> Option<(Vec<u8>, u64)> {
    let target = &call.target;
    if call.chat.stream || target.options.skip_cache {
        return None;
    }
    let ttl = match target.options.cache_ttl {
        Some(ttl) if ttl >= MIN_CACHE_TTL => ttl.min(MAX_CACHE_TTL),
        _ if target.gateway.cache_ttl > 0 => target.gateway.cache_ttl,
        _ => return None,
    };
    let mut key = Vec::with_capacity(req.body.len() + 128);
    for part in [
        target.gateway.id.as_str(),
        req.path.as_str(),
        target.provider.as_deref().unwrap_or(""),
        target.model.as_deref().unwrap_or(""),
        target.options.cache_key.as_deref().unwrap_or(""),
    ] {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    key.extend_from_slice(&req.body);
    Some((key, ttl))
}

fn cache_get(state: &State, key: &[u8]) -> Option<CacheEntry> {
    let mut inner = state.lock();
    match inner.cache.get(key) {
        Some(entry) if entry.expires > Instant::now() => Some(entry.clone()),
        Some(_) => {
            inner.cache.remove(key);
            None
        }
        None => None,
    }
}

/// Answers an admitted request (steps 4–8 of the module comment).
async fn answer(state: &State, req: &InferenceRequest, call: Call, record: RecordHandle) -> Resp {
    let cache = cache_plan(req, &call);
    let Call { target, format, chat } = call;
    if let Some(hit) = cache.as_ref().and_then(|(key, _)| cache_get(state, key)) {
        let resp = response(200, hit.content_type, SimBody::full(hit.body));
        let outcome = Outcome {
            status: 200,
            cached: true,
            tokens_in: Some(hit.tokens_in),
            tokens_out: Some(hit.tokens_out),
            fault: None,
            cache_status: Some("HIT"),
            answered_model: None,
        };
        return finish(state, req, &target, record, resp, outcome);
    }

    let provider = target.provider.clone().unwrap_or_default();
    let asked = target.model.clone().unwrap_or_default();
    let (switches, resolution) = {
        let inner = state.lock();
        (inner.dialects, inner.models.resolve(&asked))
    };
    let model = match resolution {
        Resolution::Answer(model) => model,
        Resolution::Retired => {
            return refuse(state, req, &target, record, models::retired(&provider, format, &asked));
        }
    };
    let profile = dialect::profile(&switches, &provider, &model, format == Format::OpenAi);
    if let Err(refusal) = profile.check_history(&chat.history, &model, state.signature_secret) {
        return refuse(state, req, &target, record, refusal);
    }

    let fault = state.lock().faults.take(&provider);
    let fault_kind = fault.as_ref().map(Fault::kind);
    // Note the fault now: a stalled request never reaches `finish`.
    state.update_record(record, |r| r.fault = fault_kind);

    let mut reply = chat.reply.clone().resolve(&provider, &model, &chat.conv);
    if profile.ignores_response_format && reply.is_json() {
        reply = Reply::Text;
    }
    if let Some(Fault::StructuredOutput { answer }) = &fault {
        reply = answer.spoil(reply);
    }
    let number = state.ids.next_number();
    let mut answer = Answer::reply(
        format.answer_id(number),
        (req.started_ms / 1000).max(0) as u64,
        &provider,
        &model,
        &chat.conv,
        chat.max_tokens,
        &reply,
    );
    profile.dress(&mut answer, number, state.signature_secret);
    let mut style = openai::Style {
        gemini_tool_calls: profile.gemini_tool_calls,
        without_total: false,
        signature_key: profile.signature_key.unwrap_or("google"),
    };
    let mut mode = Mode::Normal;
    match fault {
        Some(Fault::Status { status, retry_after, body, stall }) => {
            let mut resp = match body.unwrap_or_else(|| default_status_body(status)) {
                // Half the body, then nothing: an error answer that never ends.
                body if stall => {
                    let text = match body {
                        Value::String(text) => text,
                        json => json.to_string(),
                    };
                    let plan = StreamPlan::split_body(&Bytes::from(text));
                    let delay = Duration::from_millis(state.config.chunk_delay_ms);
                    response(status, "application/json", stream::spawn(plan, Mode::StallAfterFirst, delay))
                }
                // A string body is sent as is, e.g. to imitate an HTML error page.
                Value::String(text) => response(status, "text/plain; charset=utf-8", SimBody::full(text)),
                json => json_response(status, &json),
            };
            if let Some(after) = retry_after {
                set_header(&mut resp, "retry-after", &after);
            }
            return finish(state, req, &target, record, resp, Outcome::upstream_error(status, fault_kind));
        }
        Some(Fault::AigRefusal { refusal, retry_after }) => {
            let (status, code, message) = refusal.answer();
            let mut resp = gateway_error(status, code, message);
            if let Some(after) = retry_after {
                set_header(&mut resp, "retry-after", &after);
            }
            if refusal == AigRefusal::DlpBlocked {
                // The header names the matched DLP profile; its value's format is undocumented.
                set_header(&mut resp, "cf-aig-dlp", "blocked");
            }
            return finish(state, req, &target, record, resp, Outcome::upstream_error(status, fault_kind));
        }
        Some(Fault::Stall) => {
            // Never answer. hyper drops this future when the client disconnects; if nobody
            // does within STALL, give up with a gateway timeout.
            tokio::time::sleep(STALL).await;
            let resp = gateway_error(504, 2011, "Simulated stall ended");
            state.update_record(record, |r| r.status = Some(504));
            return resp;
        }
        Some(Fault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::ContentFilter) => answer = answer.blocked(),
        Some(Fault::StallAfterFirstChunk) => mode = Mode::StallAfterFirst,
        Some(Fault::CutBeforeFirstChunk) => mode = Mode::CutBeforeFirst,
        Some(Fault::CutAfterFirstChunk) => mode = Mode::CutAfterFirst,
        Some(Fault::Malformed) => mode = Mode::Malformed,
        Some(Fault::EventAfterFirstChunk { data }) => {
            let token = header(&req.headers, "cf-aig-authorization").unwrap_or_default();
            let token = token.strip_prefix("Bearer ").unwrap_or(token);
            mode = Mode::InjectAfterFirst(Bytes::from(data.replace("{gateway_token}", token)));
        }
        Some(Fault::EndBeforeFirstChunk) => mode = Mode::EndBeforeFirst,
        Some(Fault::EndAfterFirstChunk) => mode = Mode::EndAfterFirst,
        Some(Fault::UsageWithoutTotal) => style.without_total = true,
        Some(Fault::StructuredOutput { .. }) | None => {}
    }

    let delay = Duration::from_millis(state.config.chunk_delay_ms);
    // What the upstream bills as output, thinking included (as AI Gateway logs it).
    let (prompt, completion) = (answer.prompt_tokens, answer.output_tokens());
    let resp = if chat.stream {
        let plan = format.stream_plan(&answer, chat.include_usage, style);
        response(200, format.stream_content_type(), stream::spawn(plan, mode.clone(), delay))
    } else {
        let body = Bytes::from(format.full_body(&answer, style).to_string());
        match mode {
            Mode::Normal => {
                // Only clean answers are cached: never errors, never faulted answers.
                if let (Some((key, ttl)), None | Some("delay")) = (cache, fault_kind) {
                    state.lock().cache.insert(
                        key,
                        CacheEntry {
                            body: body.clone(),
                            content_type: "application/json",
                            tokens_in: prompt,
                            tokens_out: completion,
                            expires: Instant::now() + Duration::from_secs(ttl),
                        },
                    );
                }
                response(200, "application/json", SimBody::full(body))
            }
            Mode::Malformed => response(200, "application/json", SimBody::full(MALFORMED_BODY)),
            // Cut/stall a whole body half way, the same way streams are cut.
            _ => response(200, "application/json", stream::spawn(StreamPlan::split_body(&body), mode.clone(), delay)),
        }
    };
    // A broken answer's usage is unknown: the client never got it.
    let (tokens_in, tokens_out) = match &mode {
        Mode::Normal => (Some(prompt), Some(completion)),
        Mode::Malformed => (None, None),
        _ => (Some(prompt), None),
    };
    let outcome = Outcome {
        status: 200,
        cached: false,
        tokens_in,
        tokens_out,
        fault: fault_kind,
        cache_status: Some("MISS"),
        answered_model: (model != asked).then_some(model),
    };
    finish(state, req, &target, record, resp, outcome)
}

/// The upstream's own refusal of the request, in its shape (step 5): logged, no fault used.
fn refuse(state: &State, req: &InferenceRequest, target: &Target, record: RecordHandle, refusal: Refusal) -> Resp {
    let resp = json_response(refusal.status, &refusal.body);
    finish(state, req, target, record, resp, Outcome::upstream_error(refusal.status, None))
}

/// Step 8: log row, response headers, record.
fn finish(
    state: &State,
    req: &InferenceRequest,
    target: &Target,
    record: RecordHandle,
    mut resp: Resp,
    outcome: Outcome,
) -> Resp {
    let log_id = state.ids.log_id(req.started_ms);
    let success = outcome.status < 400;
    let model = outcome.answered_model.clone().or_else(|| target.model.clone()).unwrap_or_default();
    let (cost, custom_cost) = match (success, outcome.tokens_in, outcome.tokens_out) {
        // Cache hits cost nothing.
        (true, Some(_), Some(_)) if outcome.cached => (Some(0.0), false),
        (true, Some(tin), Some(tout)) => match target.options.custom_cost {
            Some(CustomCost::Total(total)) => (Some(total), true),
            Some(CustomCost::PerToken { input, output }) => (Some(tin as f64 * input + tout as f64 * output), true),
            None => (logs::cost(&model, tin, tout), false),
        },
        _ => (None, false),
    };
    let collect = target.options.collect_log.unwrap_or(target.gateway.collect_logs);
    if collect {
        let row = LogRow {
            id: log_id.clone(),
            created_at: clock::format_rfc3339_ms(req.started_ms),
            provider: target.provider.clone().unwrap_or_else(|| "unknown".into()),
            model,
            model_type: "chat",
            path: target.path.clone(),
            duration: req.started.elapsed().as_millis() as u64,
            success,
            cached: outcome.cached,
            tokens_in: outcome.tokens_in,
            tokens_out: outcome.tokens_out,
            cost,
            custom_cost,
            metadata: target.options.metadata.clone(),
            request_content_type: header(&req.headers, CONTENT_TYPE.as_str()).map(str::to_string),
            response_content_type: header(resp.headers(), CONTENT_TYPE.as_str()).map(str::to_string),
            status_code: outcome.status,
            step: 0,
            created_ms: req.started_ms,
            gateway_id: target.gateway.id.clone(),
        };
        logs::add_rows(&mut state.lock(), vec![row]);
    }
    set_header(&mut resp, "cf-aig-log-id", &log_id);
    set_header(&mut resp, "cf-aig-step", "0");
    if let Some(status) = outcome.cache_status {
        set_header(&mut resp, "cf-aig-cache-status", status);
    }
    if let Some(provider) = &target.provider {
        resp.extensions_mut().insert(ProviderTag(provider.clone()));
    }
    state.update_record(record, |r| {
        r.provider.clone_from(&target.provider);
        r.model.clone_from(&target.model);
        r.status = Some(outcome.status);
        r.fault = outcome.fault;
        r.log_id = Some(log_id.clone());
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn metadata_rules() {
        let ok = parse_options(&headers(&[("cf-aig-metadata", r#"{"agent":"A","n":1,"b":true}"#)])).unwrap();
        assert_eq!(ok.metadata.as_deref(), Some(r#"{"agent":"A","n":1,"b":true}"#));
        for bad in
            ["not json", "[1]", r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}"#, r#"{"a":{"nested":true}}"#, r#"{"a":null}"#]
        {
            assert!(parse_options(&headers(&[("cf-aig-metadata", bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_and_cost_headers() {
        let o = parse_options(&headers(&[
            ("cf-aig-cache-ttl", "120"),
            ("cf-skip-cache", "TRUE"),
            ("cf-aig-custom-cost", r#"{"per_token_in":0.001,"per_token_out":0.002}"#),
            ("cf-aig-collect-log", "false"),
        ]))
        .unwrap();
        assert_eq!(o.cache_ttl, Some(120));
        assert!(o.skip_cache);
        assert_eq!(o.custom_cost, Some(CustomCost::PerToken { input: 0.001, output: 0.002 }));
        assert_eq!(o.collect_log, Some(false));
        let o = parse_options(&headers(&[("cf-aig-custom-cost", "nope")])).unwrap();
        assert_eq!(o.custom_cost, None);
    }
}
