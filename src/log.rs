//! One structured log line per request, for every route: what was decided, never a secret or
//! prompt text.

use gateway_core::money::pricing::Usd;
use serde::Serialize;

use crate::aig::runtime::now;
use crate::respond::Decision;

/// What a route knows of its request; the decision adds who answered and how.
#[derive(Debug, Default, Serialize)]
pub struct RequestLog {
    /// `chat_completion` or `native_call`.
    pub event: &'static str,
    pub status: u16,
    pub alias: Option<String>,
    pub stream: bool,
    pub agent: Option<String>,
    pub repository: Option<String>,
    pub error: Option<&'static str>,
    pub cost_usd: Option<Usd>,
}

impl RequestLog {
    pub fn finish(&self, decision: &Decision, started: u64) {
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            request: &'a RequestLog,
            provider: Option<&'a str>,
            model: Option<&'a str>,
            attempts: u32,
            trace: &'a [String],
            log_id: Option<&'a str>,
            cache: Option<&'a str>,
            duration_ms: u64,
        }
        let line = Line {
            request: self,
            provider: decision.provider.as_deref(),
            model: decision.model.as_deref(),
            attempts: decision.attempts,
            trace: &decision.trace,
            log_id: decision.log_id.as_deref(),
            cache: decision.cache_status.as_deref(),
            duration_ms: now().saturating_sub(started),
        };
        if let Ok(text) = serde_json::to_string(&line) {
            worker::console_log!("{text}");
        }
    }
}
