//! AI Gateway's Logs API (Legacy Logs, reference §7), read page by page: the request URL, the v4
//! envelope, each log row's real field names, and what a failed page means.
//!
//! Field names are the real ones: `tokens_in`, `tokens_out`, `cost` (USD, a JSON number),
//! `status_code`, `duration` (ms), `success`, `cached`, and `metadata` as JSON *text* (an object
//! is accepted too). A page is parsed whole or refused whole: one row that is not a log row makes
//! the page malformed, so no total is ever built from half-read data.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{redact, ErrorKind, GatewayError};
use crate::money::pricing::Usd;
use crate::names;
use crate::time;

/// `per_page` at most 50 (reference §7).
pub const PER_PAGE: u32 = 50;

/// A half-open time range `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Window {
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms <= ms && ms < self.to_ms
    }
}

/// Where the logs are: `{CF_API_URL}/accounts/{account}/ai-gateway/gateways/{gateway}/logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsEndpoint {
    pub base: String,
}

impl LogsEndpoint {
    pub fn new(api_url: &str, account: &str, gateway: &str) -> LogsEndpoint {
        LogsEndpoint { base: format!("{api_url}/accounts/{account}/ai-gateway/gateways/{gateway}/logs") }
    }

    /// One page of `window`, oldest first. Oldest first keeps page numbers stable while new logs
    /// arrive (they land after the last page); `end_date` is inclusive, hence `to - 1 ms`.
    pub fn page_url(&self, window: Window, page: u32) -> String {
        format!(
            "{}?page={page}&per_page={PER_PAGE}&order_by=created_at&order_by_direction=asc&start_date={}&end_date={}",
            self.base,
            time::format_ms(window.from_ms),
            time::format_ms(window.to_ms - 1)
        )
    }
}

/// One log row: one attempt through AI Gateway. Provider and model are canonical
/// ([`names`]): what was logged as `anthropic/claude-haiku-4.5` is `claude-haiku-4-5` here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// AI Gateway's log id: the `cf-aig-log-id` the Worker saw, the ledger's `log_id`.
    pub id: String,
    pub created_ms: i64,
    pub provider: String,
    pub model: String,
    pub duration_ms: Option<u64>,
    pub success: bool,
    pub cached: bool,
    pub status: Option<u16>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    /// AI Gateway's cost estimate, exactly as written (rounded to the picodollar). `None` when the
    /// row has none (unknown model, failure) or it is not a non-negative number.
    pub cost: Option<Usd>,
    pub agent: Option<String>,
    pub repo: Option<String>,
    /// The Worker's attempt number (`cf-aig-metadata.attempt`): above 1 is a fallback.
    pub attempt: Option<u32>,
    /// Sent by agent-gateway (`cf-aig-metadata.gateway`): other callers of the same gateway
    /// have no row in the ledger.
    pub from_worker: bool,
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    provider: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    duration: Option<&'a RawValue>,
    success: bool,
    cached: bool,
    #[serde(default)]
    status_code: Option<u16>,
    #[serde(default)]
    tokens_in: Option<u64>,
    #[serde(default)]
    tokens_out: Option<u64>,
    #[serde(default, borrow)]
    cost: Option<&'a RawValue>,
    #[serde(default, borrow)]
    metadata: Option<&'a RawValue>,
}

/// The metadata keys `/analytics` groups on (see `aig::call::metadata`). Values of other types
/// than the expected ones are ignored, not fatal: metadata is free-form for other callers.
#[derive(Deserialize, Default)]
struct RawMetadata<'a> {
    #[serde(default, borrow)]
    agent: Option<&'a RawValue>,
    #[serde(default, borrow)]
    repo: Option<&'a RawValue>,
    #[serde(default, borrow)]
    attempt: Option<&'a RawValue>,
    #[serde(default, borrow)]
    gateway: Option<&'a RawValue>,
}

/// What `metadata` says about a row.
#[derive(Debug, Default, PartialEq, Eq)]
struct Meta {
    agent: Option<String>,
    repo: Option<String>,
    attempt: Option<u32>,
    from_worker: bool,
}

/// The `gateway` entry agent-gateway puts in every `cf-aig-metadata` (`aig::call::metadata`).
pub const WORKER_MARK: &str = "agent-gateway";

/// Longest agent or repository name kept; longer ones are cut (group keys stay small).
const MAX_LABEL: usize = 100;

fn label(raw: Option<&RawValue>) -> Option<String> {
    let text: Cow<'_, str> = crate::json::from_str(raw?.get()).ok()?;
    clean_label(&text)
}

/// An agent or repository name as a group key (logs and ledger alike): control characters
/// dropped, at most [`MAX_LABEL`] characters, blank is none.
pub fn clean_label(text: &str) -> Option<String> {
    let clean: String = text.chars().filter(|c| !c.is_control()).take(MAX_LABEL).collect();
    (!clean.trim().is_empty()).then_some(clean)
}

/// A repository as a group key: [`clean_label`] in the canonical spelling, so that rows written
/// before repositories were canonical (`Octo-Org/Repo`) are grouped with today's (`octo-org/repo`),
/// from the ledger and from the logs alike. Folding here, not in the SQL, keeps the ledger's
/// query on its stored columns and both sources on one rule.
pub fn repo_label(text: &str) -> Option<String> {
    clean_label(text).map(|label| crate::request::caller::canonical_repository(&label))
}

fn metadata(raw: Option<&RawValue>) -> Meta {
    let Some(raw) = raw else { return Meta::default() };
    // Usually JSON text inside a JSON string; the single-log API gives an object.
    let text: Cow<'_, str> = match crate::json::from_str::<Cow<'_, str>>(raw.get()) {
        Ok(inner) => inner,
        Err(_) => Cow::Borrowed(raw.get()),
    };
    let Ok(meta) = crate::json::from_str::<RawMetadata<'_>>(&text) else { return Meta::default() };
    let attempt = meta.attempt.and_then(|a| {
        let t = a.get().trim_matches('"');
        t.parse::<u32>().ok()
    });
    let from_worker =
        meta.gateway.is_some_and(|g| crate::json::from_str::<Cow<'_, str>>(g.get()).is_ok_and(|s| s == WORKER_MARK));
    Meta { agent: label(meta.agent), repo: label(meta.repo).as_deref().and_then(repo_label), attempt, from_worker }
}

impl LogEntry {
    fn from_raw(raw: RawEntry<'_>) -> Result<LogEntry, String> {
        let created_ms = time::parse_rfc3339(&raw.created_at)
            .ok_or_else(|| format!("created_at {:?} is not an RFC 3339 date-time", truncate(&raw.created_at)))?;
        let meta = metadata(raw.metadata);
        Ok(LogEntry {
            id: raw.id.chars().filter(|c| !c.is_control()).take(MAX_LABEL).collect(),
            created_ms,
            provider: names::provider(&raw.provider),
            model: names::model(&raw.model),
            duration_ms: raw.duration.and_then(|d| number_as_u64(d.get())),
            success: raw.success,
            cached: raw.cached,
            status: raw.status_code,
            tokens_in: raw.tokens_in,
            tokens_out: raw.tokens_out,
            cost: raw.cost.and_then(|c| usd_from_json_number(c.get())),
            agent: meta.agent,
            repo: meta.repo,
            attempt: meta.attempt,
            from_worker: meta.from_worker,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A JSON number (integer or not) as a whole non-negative count, rounded.
fn number_as_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    // `duration` is documented as an integer; tolerate `842.0` but not negatives or NaN.
    text.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15).map(|f| f.round() as u64)
}

/// A JSON number literal (`0.0005936`, `1.5e-5`, `0`) as exact picodollars, rounded half up at
/// the twelfth decimal. Costs are decimal text on the wire; going through `f64` would add error
/// to every sum. `None` for negatives, non-numbers and amounts beyond `u64` picodollars.
pub fn usd_from_json_number(text: &str) -> Option<Usd> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].trim_start_matches('+').parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let negative = whole.starts_with('-');
    let whole = whole.trim_start_matches('-');
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if mantissa.ends_with('.') {
        return None;
    }
    let all: String = whole.chars().chain(frac.chars()).collect();
    let digits = all.trim_start_matches('0');
    if digits.is_empty() {
        return Some(Usd::ZERO);
    }
    if negative {
        return None;
    }
    // value = digits × 10^(exponent - frac.len()); in picodollars, shift by 12 more.
    let shift = i64::from(exponent) - frac.len() as i64 + 12;
    let pico: u128 = if shift >= 0 {
        if digits.len() as i64 + shift > 38 {
            return None;
        }
        digits.parse::<u128>().ok()?.checked_mul(10u128.pow(shift as u32))?
    } else {
        let cut = (-shift) as usize;
        if cut > digits.len() {
            0
        } else {
            let (keep, dropped) = digits.split_at(digits.len() - cut);
            if keep.len() > 38 {
                return None;
            }
            let kept: u128 = if keep.is_empty() { 0 } else { keep.parse().ok()? };
            kept + u128::from(dropped.as_bytes()[0] >= b'5')
        }
    };
    u64::try_from(pico).ok().map(Usd)
}

/// `result_info` of a page (all optional: the schema only promises what it promises).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct PageInfo {
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub per_page: Option<u64>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub total_count: Option<u64>,
}

/// One page of logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    pub info: PageInfo,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    errors: Option<Vec<ApiMessage>>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    result_info: Option<PageInfo>,
}

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogsFailure {
    /// 401/403: the token is wrong or lacks AI Gateway Read.
    Unauthorized { status: u16, message: String },
    /// 429, with `Retry-After` in seconds when given.
    RateLimited { retry_after_s: Option<u64> },
    /// 5xx.
    Server { status: u16, message: String },
    /// Any other 4xx (404: no such account or gateway; 400: a refused query).
    Rejected { status: u16, message: String },
    /// A 2xx that is not a page of logs, or `success: false`.
    Malformed(String),
    /// No connection (DNS, refused, reset).
    Unreachable(String),
    /// No answer in time.
    Timeout,
}

impl LogsFailure {
    /// One line for an operator (secrets redacted).
    pub fn describe(&self, secrets: &[&str]) -> String {
        let text = match self {
            LogsFailure::Unauthorized { status, message } => {
                format!("the Cloudflare API refused CF_API_TOKEN ({status}: {message}); it needs AI Gateway Read")
            }
            LogsFailure::RateLimited { retry_after_s: Some(s) } => {
                format!("the Cloudflare API rate-limited the logs requests (429, retry after {s} s)")
            }
            LogsFailure::RateLimited { retry_after_s: None } => {
                "the Cloudflare API rate-limited the logs requests (429)".to_owned()
            }
            LogsFailure::Server { status, message } => format!("the logs API failed ({status}: {message})"),
            LogsFailure::Rejected { status, message } => {
                format!("the logs API refused the query ({status}: {message})")
            }
            LogsFailure::Malformed(why) => format!("the logs API sent a malformed page: {why}"),
            LogsFailure::Unreachable(why) => format!("the Cloudflare API could not be reached: {why}"),
            LogsFailure::Timeout => "the logs API did not answer in time".to_owned(),
        };
        redact(&text, secrets)
    }

    /// The error `/analytics` answers with when nothing could be read at all.
    pub fn to_error(&self, secrets: &[&str]) -> GatewayError {
        let message = format!("AI Gateway's logs could not be read: {}.", self.describe(secrets));
        let kind = match self {
            LogsFailure::Unauthorized { .. } => ErrorKind::UpstreamAuth,
            LogsFailure::RateLimited { .. } => ErrorKind::Upstream(429),
            LogsFailure::Server { status, .. } => ErrorKind::Upstream(*status),
            LogsFailure::Rejected { status: 404, .. } => ErrorKind::Configuration,
            LogsFailure::Rejected { .. } | LogsFailure::Malformed(_) => ErrorKind::UpstreamMalformed,
            LogsFailure::Unreachable(_) => ErrorKind::UpstreamUnreachable,
            LogsFailure::Timeout => ErrorKind::UpstreamTimeout,
        };
        let mut err = GatewayError::new(kind, message);
        if let LogsFailure::RateLimited { retry_after_s } = self {
            err.retry_after = Some(retry_after_s.unwrap_or(1).to_string());
        }
        err
    }
}

/// Longest API message carried into our own messages.
const MAX_MESSAGE: usize = 300;

fn api_message(body: &str) -> String {
    let from_envelope = crate::json::from_str::<Envelope<'_>>(body).ok().and_then(|e| {
        let parts: Vec<String> = e
            .errors?
            .into_iter()
            .map(|m| match (m.code, m.message) {
                (Some(c), Some(t)) => format!("{t} [{c}]"),
                (None, Some(t)) => t,
                (Some(c), None) => format!("code {c}"),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    });
    let text = from_envelope.unwrap_or_else(|| body.trim().to_owned());
    let text: String = text.chars().filter(|c| !c.is_control()).take(MAX_MESSAGE).collect();
    if text.is_empty() {
        "no message".to_owned()
    } else {
        text
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the Cloudflare API).
pub fn parse_retry_after(value: Option<&str>) -> Option<u64> {
    value?.trim().parse::<u64>().ok()
}

/// Reads one answer of the logs API: a page, or why not.
pub fn read_page(status: u16, retry_after: Option<&str>, body: &str) -> Result<LogPage, LogsFailure> {
    match status {
        200..=299 => {}
        401 | 403 => return Err(LogsFailure::Unauthorized { status, message: api_message(body) }),
        429 => return Err(LogsFailure::RateLimited { retry_after_s: parse_retry_after(retry_after) }),
        500..=599 => return Err(LogsFailure::Server { status, message: api_message(body) }),
        _ => return Err(LogsFailure::Rejected { status, message: api_message(body) }),
    }
    let envelope: Envelope<'_> =
        crate::json::from_str(body).map_err(|e| LogsFailure::Malformed(format!("not a v4 JSON envelope ({e})")))?;
    if envelope.success == Some(false) {
        return Err(LogsFailure::Malformed(format!("success is false ({})", api_message(body))));
    }
    let result = envelope.result.ok_or_else(|| LogsFailure::Malformed("no `result`".to_owned()))?;
    let raw: Vec<RawEntry<'_>> = crate::json::from_str(result.get())
        .map_err(|e| LogsFailure::Malformed(format!("`result` is not a list of log rows ({e})")))?;
    let entries =
        raw.into_iter().map(LogEntry::from_raw).collect::<Result<Vec<_>, _>>().map_err(LogsFailure::Malformed)?;
    Ok(LogPage { entries, info: envelope.result_info.unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{
      "success": true, "errors": [], "messages": [],
      "result": [
        {"id":"01K3ZQ8W6T2M4N8P0R5S7V9X1Y","created_at":"2026-08-20T09:14:03.512Z","provider":"google-ai-studio","model":"gemini-2.5-flash","model_type":"chat","path":"v1/models/gemini-2.5-flash:generateContent","duration":842,"success":true,"cached":false,"tokens_in":412,"tokens_out":188,"cost":0.0005936,"custom_cost":false,"metadata":"{\"agent\":\"TriagingAgent\",\"repo\":\"octo-org/docs\",\"route\":\"triage\",\"attempt\":2,\"gateway\":\"agent-gateway\"}","status_code":200,"step":0},
        {"id":"01K3ZQ7RA1B2C3D4E5F6G7H8J9","created_at":"2026-08-20T09:13:40.020Z","provider":"openai","model":"gpt-4o-mini","path":"chat/completions","duration":15,"success":true,"cached":true,"tokens_in":96,"tokens_out":54,"cost":0,"custom_cost":false,"metadata":"{\"user\":\"u_7\"}","status_code":200,"step":0},
        {"id":"01K3ZQ6M0KX8Y7W6V5U4T3S2R1","created_at":"2026-08-20T09:12:11.877Z","provider":"anthropic","model":"claude-sonnet-4-5","path":"v1/messages","duration":30012,"success":false,"cached":false,"tokens_in":null,"tokens_out":null,"status_code":529,"step":0}
      ],
      "result_info": {"page":1,"per_page":3,"count":3,"total_count":1287}
    }"#;

    #[test]
    fn reads_the_reference_page() {
        let page = read_page(200, None, PAGE).unwrap();
        assert_eq!(page.info.total_count, Some(1287));
        assert_eq!(page.entries.len(), 3);
        let first = &page.entries[0];
        assert_eq!(first.provider, "google-ai-studio");
        assert_eq!(first.cost, Some(Usd(593_600_000)));
        assert_eq!((first.tokens_in, first.tokens_out, first.duration_ms), (Some(412), Some(188), Some(842)));
        assert_eq!(first.agent.as_deref(), Some("TriagingAgent"));
        assert_eq!(first.repo.as_deref(), Some("octo-org/docs"));
        assert_eq!(first.attempt, Some(2));
        assert_eq!(time::format_ms(first.created_ms), "2026-08-20T09:14:03.512Z");
        let cached = &page.entries[1];
        assert!(cached.cached);
        assert_eq!(cached.cost, Some(Usd::ZERO));
        assert_eq!(cached.agent, None, "other metadata keys are ignored");
        let failed = &page.entries[2];
        assert!(!failed.success);
        assert_eq!((failed.status, failed.tokens_in, failed.cost), (Some(529), None, None));
    }

    #[test]
    fn metadata_as_object_or_odd_values() {
        let m = metadata(Some(
            &RawValue::from_string(r#"{"agent":"A","repo":"o/r","attempt":"3","gateway":"agent-gateway"}"#.into())
                .unwrap(),
        ));
        assert_eq!(m, Meta { agent: Some("A".into()), repo: Some("o/r".into()), attempt: Some(3), from_worker: true });
        let m = metadata(Some(&RawValue::from_string(r#"{"agent":"Agent","repo":"Octo-Org/Repo"}"#.into()).unwrap()));
        assert_eq!((m.agent.as_deref(), m.repo.as_deref()), (Some("Agent"), Some("octo-org/repo")));
        let m = metadata(Some(&RawValue::from_string(r#""{\"agent\":7,\"repo\":\"x\\u0007y\"}""#.into()).unwrap()));
        assert_eq!((m.agent, m.repo.as_deref(), m.attempt, m.from_worker), (None, Some("xy"), None, false));
        let m = metadata(Some(&RawValue::from_string(r#""{\"gateway\":\"someone-else\"}""#.into()).unwrap()));
        assert!(!m.from_worker);
        assert_eq!(metadata(Some(&RawValue::from_string(r#""not json""#.into()).unwrap())), Meta::default());
    }

    #[test]
    fn costs_are_exact() {
        let cases = [
            ("0", Some(0)),
            ("0.0", Some(0)),
            ("0.0005936", Some(593_600_000)),
            ("1.5e-5", Some(15_000_000)),
            ("1.5E-5", Some(15_000_000)),
            ("2e3", Some(2_000 * 1_000_000_000_000)),
            ("0.0023456000000000003", Some(2_345_600_000)),
            ("0.0000000000005", Some(1)),
            ("0.0000000000004999", Some(0)),
            ("1e-13", Some(0)),
            ("5e-13", Some(1)),
            ("-0.0", Some(0)),
            ("-1", None),
            ("1e30", None),
            ("\"0.1\"", None),
            ("1.", None),
            (".5", None),
            ("null", None),
        ];
        for (text, pico) in cases {
            assert_eq!(usd_from_json_number(text).map(|u| u.0), pico, "{text}");
        }
    }

    #[test]
    fn failures_are_named() {
        let auth =
            read_page(401, None, r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#)
                .unwrap_err();
        assert_eq!(auth, LogsFailure::Unauthorized { status: 401, message: "Authentication error [10000]".into() });
        assert_eq!(auth.to_error(&[]).status(), 502);
        let limited = read_page(429, Some(" 7 "), "{}").unwrap_err();
        assert_eq!(limited, LogsFailure::RateLimited { retry_after_s: Some(7) });
        let err = limited.to_error(&[]);
        assert_eq!((err.status(), err.retry_after.as_deref()), (429, Some("7")));
        assert!(matches!(read_page(503, None, "busy").unwrap_err(), LogsFailure::Server { status: 503, .. }));
        assert_eq!(
            read_page(404, None, r#"{"success":false,"errors":[{"code":7002,"message":"Not Found"}]}"#)
                .unwrap_err()
                .to_error(&[])
                .status(),
            500
        );
        for bad in [
            "not json",
            r#"{"success":true}"#,
            r#"{"success":false,"errors":[]}"#,
            r#"{"success":true,"result":{"id":1}}"#,
            r#"{"success":true,"result":[{"provider":"openai"}]}"#,
            r#"{"success":true,"result":[{"created_at":"yesterday","provider":"p","model":"m","success":true,"cached":false}]}"#,
        ] {
            assert!(matches!(read_page(200, None, bad), Err(LogsFailure::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn secrets_never_reach_messages() {
        let f = read_page(500, None, r#"{"errors":[{"message":"bad token tok-123456789"}]}"#).unwrap_err();
        let e = f.to_error(&["tok-123456789"]);
        assert!(!e.message.contains("tok-123456789"));
        assert!(e.message.contains("[redacted]"));
    }

    #[test]
    fn page_url_is_oldest_first_and_inclusive() {
        let ep = LogsEndpoint::new("http://127.0.0.1:9/client/v4", "acct", "gw");
        let w = Window { from_ms: 0, to_ms: time::MS_PER_DAY };
        assert_eq!(
            ep.page_url(w, 3),
            "http://127.0.0.1:9/client/v4/accounts/acct/ai-gateway/gateways/gw/logs?page=3&per_page=50\
             &order_by=created_at&order_by_direction=asc&start_date=1970-01-01T00:00:00.000Z\
             &end_date=1970-01-01T23:59:59.999Z"
        );
    }
}
