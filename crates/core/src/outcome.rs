//! What a request came to, held once: what the route knew of it (who asked, for what) and the
//! engine's record (each attempt's line, carrying what was measured of it). The response's
//! decision headers ([`RequestOutcome::headers`]), its log line ([`RequestOutcome::log_line`])
//! and its ledger rows ([`RequestOutcome::rows`]) are each a projection of it, so they cannot
//! disagree; a committed stream's end completes it ([`RequestOutcome::stream_ended`]) and the
//! same projections say what the whole request cost.

use serde::Serialize;

use crate::aig::cache;
use crate::attempt::AttemptEnd;
use crate::engine::{Line, Record};
use crate::ledger::{Route, Row};
use crate::money::pricing::{Tokens, Usd};
use crate::names;

/// One request's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    pub route: Route,
    /// The ledger's id of the request (`x-gateway-request-id`): its rows carry it.
    pub request_id: Option<String>,
    pub alias: Option<String>,
    pub agent: Option<String>,
    pub repository: Option<String>,
    pub stream: bool,
    /// The provider asked for before any target was tried (a native route's), if any.
    pub provider: Option<String>,
    /// The model asked for, named when no attempt names one (a native route's body).
    pub model: Option<String>,
    /// The targets the record's lines point at: `(provider, model)` by index.
    pub targets: Vec<(String, String)>,
    pub record: Record,
    /// No price was known for what was asked (a native call's model): what its answer was
    /// charged is not its cost, so no cost is stated (rather than a `0` that reads as free).
    pub unpriced: bool,
    /// What the answering provider has left of today's budget, this request counted at its
    /// worst case.
    pub budget_remaining: Option<Usd>,
    /// What the caller should know of how its answer was checked or priced.
    pub warnings: Vec<String>,
    /// The response's status, and its error code when it is an error (or a stream ended by one).
    pub status: u16,
    pub error: Option<&'static str>,
}

impl RequestOutcome {
    /// A request of `route` before anything was decided: nothing attempted, nothing charged.
    pub fn new(route: Route) -> RequestOutcome {
        RequestOutcome {
            route,
            request_id: None,
            alias: None,
            agent: None,
            repository: None,
            stream: false,
            provider: None,
            model: None,
            targets: Vec::new(),
            record: Record::default(),
            unpriced: false,
            budget_remaining: None,
            warnings: Vec::new(),
            status: 0,
            error: None,
        }
    }

    /// The last attempt made, if any: whose provider and AI Gateway headers the response names.
    fn last_line(&self) -> Option<&Line> {
        self.record.lines.last()
    }

    /// The provider of the last attempt (else the one asked for).
    pub fn provider(&self) -> Option<&str> {
        let last = self.record.last_target.and_then(|i| self.targets.get(i));
        last.map(|(p, _)| p.as_str()).or(self.provider.as_deref())
    }

    /// The model that answered: the one its answer named, else its target's, else the one asked.
    pub fn model(&self) -> Option<&str> {
        let named = self.record.answered().and_then(|l| l.meter.answered_model.as_deref());
        let target = self.record.last_target.and_then(|i| self.targets.get(i)).map(|(_, m)| m.as_str());
        named.or(target.filter(|m| names::is_named(m))).or(self.model.as_deref())
    }

    /// AI Gateway's `cf-aig-cache-status` of the last attempt.
    pub fn cache_status(&self) -> Option<&str> {
        self.last_line().and_then(|l| l.meter.cache.as_deref())
    }

    /// Whether the last attempt was answered from AI Gateway's cache.
    pub fn cache_hit(&self) -> bool {
        cache::is_hit(self.cache_status())
    }

    /// What the request was charged against the budgets, every attempt included (exact USD):
    /// `None` while a committed stream is still open, and for an unpriced answer.
    pub fn charged(&self) -> Option<Usd> {
        let open = self.record.lines.iter().any(|l| l.charged.is_none());
        let stated = !self.unpriced || self.cache_hit();
        (!open && stated).then_some(self.record.charged)
    }

    /// The decision headers, as name/value pairs: on every response of the request, and what an
    /// idempotent replay repeats.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("x-gateway-provider".to_owned(), self.provider().unwrap_or("none").to_owned()),
            ("x-gateway-model".to_owned(), self.model().unwrap_or("none").to_owned()),
            ("x-gateway-attempts".to_owned(), self.record.attempts.to_string()),
        ];
        let trace = &self.record.trace;
        let optional = [
            ("x-gateway-trace", (!trace.is_empty()).then(|| trace.join(", "))),
            ("cf-aig-log-id", self.last_line().and_then(|l| l.meter.log_id.clone())),
            ("cf-aig-cache-status", self.cache_status().map(str::to_owned)),
            ("x-gateway-cost-usd", self.charged().map(|c| c.to_string())),
            ("x-gateway-request-id", self.request_id.clone()),
            ("x-gateway-budget-remaining-usd", self.budget_remaining.map(|c| c.to_string())),
            ("x-gateway-warning", (!self.warnings.is_empty()).then(|| header_text(&self.warnings.join("; ")))),
        ];
        h.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))));
        h
    }

    /// The request's one structured log line (JSON): what was decided, never a secret or
    /// prompt text.
    pub fn log_line(&self, duration_ms: u64) -> String {
        #[derive(Serialize)]
        struct LogLine<'a> {
            event: &'static str,
            status: u16,
            alias: Option<&'a str>,
            stream: bool,
            agent: Option<&'a str>,
            repository: Option<&'a str>,
            error: Option<&'static str>,
            cost_usd: Option<Usd>,
            provider: Option<&'a str>,
            model: Option<&'a str>,
            attempts: u32,
            trace: &'a [String],
            log_id: Option<&'a str>,
            cache: Option<&'a str>,
            duration_ms: u64,
        }
        let line = LogLine {
            event: match self.route {
                Route::Chat => "chat_completion",
                Route::Native => "native_call",
            },
            status: self.status,
            alias: self.alias.as_deref(),
            stream: self.stream,
            agent: self.agent.as_deref(),
            repository: self.repository.as_deref(),
            error: self.error,
            cost_usd: self.charged(),
            provider: self.provider(),
            model: self.model(),
            attempts: self.record.attempts,
            trace: &self.record.trace,
            log_id: self.last_line().and_then(|l| l.meter.log_id.as_deref()),
            cache: self.cache_status(),
            duration_ms,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// The ledger's rows: one per attempt, in order. A committed stream's is open (its charge
    /// not known) until [`Self::stream_ended`].
    pub fn rows(&self) -> Vec<Row> {
        let request_id = self.request_id.clone().unwrap_or_default();
        self.record
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| {
                let (provider, model) = self.targets.get(line.target)?;
                let meter = &line.meter;
                Some(Row {
                    request_id: request_id.clone(),
                    attempt: i as u32 + 1,
                    ts_ms: meter.started_ms,
                    route: self.route,
                    alias: self.alias.clone(),
                    provider: provider.clone(),
                    model: model.clone(),
                    answered_model: meter.answered_model.clone(),
                    agent: self.agent.clone(),
                    repository: self.repository.clone(),
                    outcome: line.outcome.clone(),
                    status: meter.status,
                    success: line.answered,
                    tokens: meter.tokens,
                    cost: meter.cost,
                    charged: line.charged.unwrap_or(Usd::ZERO),
                    open: line.charged.is_none(),
                    cache: meter.cache.clone(),
                    log_id: meter.log_id.clone(),
                    latency_ms: meter.ended_ms.saturating_sub(meter.started_ms),
                    stream: self.stream,
                })
            })
            .collect()
    }

    /// A committed stream ended at `ended_ms`: its attempt (the last) was closed as `end` and
    /// charged `charge`, it reported `tokens` (if it did), and `error` ended it (if one did).
    pub fn stream_ended(
        &mut self,
        end: AttemptEnd,
        charge: Usd,
        tokens: Option<Tokens>,
        ended_ms: u64,
        error: Option<&'static str>,
    ) {
        if let Some(line) = self.record.lines.last_mut().filter(|l| l.charged.is_none()) {
            line.charged = Some(charge);
            if tokens.is_some() {
                line.meter.tokens = tokens;
            }
            line.meter.cost = end.cost();
            line.meter.ended_ms = ended_ms;
            self.record.charged = self.record.charged.saturating_add(charge);
        }
        self.error = error;
    }
}

/// The decision headers of a response nothing was attempted for (provider and model `none`),
/// without a cost: what the Worker's own routes (`/healthz`, `/v1/models`, `/limits`) carry.
pub fn nothing_attempted() -> Vec<(String, String)> {
    let mut headers = RequestOutcome::new(Route::Chat).headers();
    headers.retain(|(name, _)| name != "x-gateway-cost-usd");
    headers
}

/// Text as a header value: printable ASCII, at most 1,000 bytes.
fn header_text(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::Meter;
    use crate::ledger::{Value, INSERT};

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A streamed request that failed over once: a 503 from Gemini, then OpenAI's stream.
    fn failed_over_stream() -> RequestOutcome {
        let record = Record {
            trace: vec!["gemini/gemini-2.5-flash=503".into(), "openai/gpt-4o-mini=200".into()],
            attempts: 2,
            charged: Usd(0),
            last_target: Some(1),
            lines: vec![
                Line {
                    target: 0,
                    outcome: "503".into(),
                    charged: Some(Usd::ZERO),
                    answered: false,
                    meter: Meter { started_ms: 1_000, ended_ms: 1_040, status: Some(503), ..Meter::default() },
                },
                Line {
                    target: 1,
                    outcome: "200".into(),
                    charged: None,
                    answered: true,
                    meter: Meter {
                        started_ms: 1_050,
                        ended_ms: 1_100,
                        status: Some(200),
                        log_id: Some("log-2".into()),
                        cache: Some("MISS".into()),
                        answered_model: Some("gpt-4o-mini-2025".into()),
                        ..Meter::default()
                    },
                },
            ],
        };
        RequestOutcome {
            request_id: Some("r1".into()),
            alias: Some("triage".into()),
            agent: Some("triage-bot".into()),
            repository: Some("acme/app".into()),
            stream: true,
            targets: vec![("gemini".into(), "gemini-2.5-flash".into()), ("openai".into(), "gpt-4o-mini".into())],
            record,
            status: 200,
            ..RequestOutcome::new(Route::Chat)
        }
    }

    #[test]
    fn one_row_per_attempt_each_carrying_what_was_measured_of_it() {
        let mut outcome = failed_over_stream();
        let rows = outcome.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].attempt, rows[0].provider.as_str(), rows[0].model.as_str()),
            (1, "gemini", "gemini-2.5-flash")
        );
        assert_eq!((rows[0].latency_ms, rows[0].success, rows[0].open), (40, false, false));
        assert_eq!((rows[1].attempt, rows[1].model.as_str(), rows[1].open), (2, "gpt-4o-mini", true));
        assert_eq!(rows[1].answered_model.as_deref(), Some("gpt-4o-mini-2025"));

        let tokens = Tokens { input: 10, cached_input: 2, output: 5, reasoning: 3 };
        outcome.stream_ended(AttemptEnd::StreamComplete { cost: Some(Usd(777)) }, Usd(777), Some(tokens), 1_900, None);
        let rows = outcome.rows();
        assert_eq!((rows[1].charged, rows[1].open, rows[1].latency_ms), (Usd(777), false, 850));
        let p = rows[1].params();
        assert_eq!(p.len(), INSERT.matches('?').count());
        assert_eq!(p[13], Value::Int(12), "tokens_in counts the cached prompt tokens too");
        assert_eq!((&p[14], &p[15]), (&Value::Int(5), &Value::Int(2)));
        assert_eq!((&p[16], &p[17]), (&Value::Text("777".into()), &Value::Text("777".into())));
        assert_eq!(p[19], Value::Text("log-2".into()));
    }

    /// The headers, the log line and the rows say the same: who answered, after what, at what
    /// cost — and a stream states its cost only once its end is known.
    #[test]
    fn headers_log_line_and_rows_project_one_outcome() {
        let mut outcome = failed_over_stream();
        let open = outcome.headers();
        assert_eq!(header(&open, "x-gateway-provider"), Some("openai"));
        assert_eq!(header(&open, "x-gateway-model"), Some("gpt-4o-mini-2025"), "the model that answered");
        assert_eq!(header(&open, "x-gateway-attempts"), Some("2"));
        assert_eq!(header(&open, "cf-aig-log-id"), Some("log-2"));
        assert_eq!(header(&open, "x-gateway-cost-usd"), None, "unknown until the stream ends");

        outcome.stream_ended(AttemptEnd::StreamComplete { cost: Some(Usd(500)) }, Usd(500), None, 2_000, None);
        let closed = outcome.headers();
        assert_eq!(header(&closed, "x-gateway-cost-usd"), Some(Usd(500).to_string().as_str()));
        let line: serde_json::Value = serde_json::from_str(&outcome.log_line(7)).unwrap();
        assert_eq!(line["event"], "chat_completion");
        assert_eq!((line["provider"].as_str(), line["model"].as_str()), (Some("openai"), Some("gpt-4o-mini-2025")));
        assert_eq!(line["cost_usd"], serde_json::json!(Usd(500)));
        assert_eq!(line["trace"][0], "gemini/gemini-2.5-flash=503");
        let charged: Usd = outcome.rows().iter().map(|r| r.charged).fold(Usd::ZERO, Usd::saturating_add);
        assert_eq!(Some(charged), outcome.charged(), "the rows add up to what the headers state");
    }

    #[test]
    fn nothing_attempted_states_nothing_spent_and_an_unpriced_answer_no_cost() {
        let failed = RequestOutcome { status: 400, error: Some("invalid_request"), ..RequestOutcome::new(Route::Chat) };
        let h = failed.headers();
        assert_eq!((header(&h, "x-gateway-provider"), header(&h, "x-gateway-attempts")), (Some("none"), Some("0")));
        assert_eq!(header(&h, "x-gateway-cost-usd"), Some("0"), "an error before any attempt spent nothing");
        assert!(failed.rows().is_empty());
        assert_eq!(header(&nothing_attempted(), "x-gateway-cost-usd"), None);

        let native = RequestOutcome {
            provider: Some("anthropic".into()),
            model: Some("claude-x".into()),
            unpriced: true,
            ..RequestOutcome::new(Route::Native)
        };
        assert_eq!(native.charged(), None);
        let h = native.headers();
        assert_eq!(
            (header(&h, "x-gateway-provider"), header(&h, "x-gateway-model")),
            (Some("anthropic"), Some("claude-x"))
        );
    }

    #[test]
    fn warnings_become_one_printable_header() {
        let outcome = RequestOutcome {
            warnings: vec!["schema not checked in full".into(), "naïve\nline".into()],
            ..RequestOutcome::new(Route::Chat)
        };
        assert_eq!(header(&outcome.headers(), "x-gateway-warning"), Some("schema not checked in full; na?ve?line"));
    }
}
