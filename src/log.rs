//! One structured log line per request: what was decided, never a secret or prompt text.

use gateway_core::account::pricing::Usd;
use serde::Serialize;

use crate::aig::runtime::now;
use crate::respond::Decision;

/// One structured log line per request: what was decided, never a secret or prompt text.
#[derive(Debug, Default, Serialize)]
pub struct RequestLog {
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
            event: &'static str,
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
            event: "chat_completion",
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

/// One structured log line per native call: what was decided, never a secret or prompt text.
#[derive(Debug, Default, Serialize)]
pub struct NativeLog {
    pub status: u16,
    pub provider: &'static str,
    pub model: Option<String>,
    pub stream: bool,
    pub agent: Option<String>,
    pub repository: Option<String>,
    pub error: Option<&'static str>,
    pub cost_usd: Option<Usd>,
}

impl NativeLog {
    pub fn finish(&self, decision: &Decision, started: u64) {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'static str,
            #[serde(flatten)]
            call: &'a NativeLog,
            attempts: u32,
            trace: &'a [String],
            log_id: Option<&'a str>,
            cache: Option<&'a str>,
            duration_ms: u64,
        }
        let line = Line {
            event: "native_call",
            call: self,
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
