//! Scripted faults of the Logs API, for testing a reader that pages through it: after N pages
//! served normally, the next list request(s) get a 429 with `Retry-After`, a 5xx, or a 200 whose
//! body is not a page of logs. Every list request is also recorded (its query and status), so a
//! test can see exactly which pages were asked for.
//!
//! `POST /__sim/logs/faults` `{"after_pages": 3, "times": 1, "fault": {"kind": "status",
//! "status": 429, "retry_after": 2} | {"kind": "malformed"} | {"kind": "wrong_shape"}}`.

use std::collections::VecDeque;

use serde_json::{json, Value};

use crate::http::{json_response, response, set_header, v4_error, Resp, SimBody};

#[derive(Debug, Clone, PartialEq)]
pub enum LogFault {
    /// This status, `Retry-After`, and a body (default: a v4 error envelope).
    Status { status: u16, retry_after: Option<String>, body: Option<Value> },
    /// 200 with a body cut off in the middle of the JSON.
    Malformed,
    /// 200 with a valid v4 envelope whose `result` is not a list of log rows.
    WrongShape,
}

impl LogFault {
    pub fn parse(v: &Value) -> Result<LogFault, String> {
        let kind = v.get("kind").and_then(Value::as_str).ok_or("fault.kind must be a string")?;
        Ok(match kind {
            "status" => {
                let status = v
                    .get("status")
                    .and_then(Value::as_u64)
                    .filter(|s| (400..=599).contains(s))
                    .ok_or("fault.status must be an integer between 400 and 599")?;
                let retry_after = match v.get("retry_after") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(_) => return Err("fault.retry_after must be a string or number".into()),
                };
                LogFault::Status { status: status as u16, retry_after, body: v.get("body").cloned() }
            }
            "malformed" => LogFault::Malformed,
            "wrong_shape" => LogFault::WrongShape,
            other => return Err(format!("unknown logs fault kind `{other}` (status, malformed, wrong_shape)")),
        })
    }

    fn to_json(&self) -> Value {
        match self {
            LogFault::Status { status, retry_after, body } => {
                json!({"kind": "status", "status": status, "retry_after": retry_after, "body": body})
            }
            LogFault::Malformed => json!({"kind": "malformed"}),
            LogFault::WrongShape => json!({"kind": "wrong_shape"}),
        }
    }

    /// The answer the faulted request gets. Codes: 971 is Cloudflare's "please throttle"; 10500
    /// for a server error is the simulator's choice.
    pub fn respond(&self) -> Resp {
        match self {
            LogFault::Status { status, retry_after, body } => {
                let mut resp = match body {
                    Some(Value::String(text)) => response(*status, "text/plain", SimBody::full(text.clone())),
                    Some(b) => json_response(*status, b),
                    None if *status == 429 => {
                        v4_error(429, 971, "Please wait and consider throttling your request speed")
                    }
                    None => v4_error(*status, 10500, "Simulated logs API failure"),
                };
                if let Some(r) = retry_after {
                    set_header(&mut resp, "retry-after", r);
                }
                resp
            }
            LogFault::Malformed => response(
                200,
                "application/json",
                SimBody::full(
                    r#"{"success":true,"errors":[],"messages":[],"result":[{"id":"01K3ZQ8W6T2M4N8P0R5S7V9X1Y","created_at":"2026-08-2"#,
                ),
            ),
            LogFault::WrongShape => json_response(
                200,
                &json!({"success": true, "errors": [], "messages": [], "result": {"logs": "elsewhere"},
                        "result_info": {"page": 1, "per_page": 50, "count": 0, "total_count": 0}}),
            ),
        }
    }
}

#[derive(Debug, Clone)]
struct Scripted {
    after: u64,
    remaining: u32,
    fault: LogFault,
}

/// A FIFO of scripted Logs API faults, and the record of list requests.
#[derive(Debug, Default)]
pub struct LogFaults {
    queue: VecDeque<Scripted>,
    /// `{"query", "status"}` per list request since the last reset.
    pub requests: Vec<Value>,
}

impl LogFaults {
    pub fn push(&mut self, after: u64, times: u32, fault: LogFault) -> usize {
        self.queue.push_back(Scripted { after, remaining: times, fault });
        self.queue.len()
    }

    /// The fault for this list request, if its turn has come (otherwise one more page served).
    pub fn take(&mut self) -> Option<LogFault> {
        let head = self.queue.front_mut()?;
        if head.after > 0 {
            head.after -= 1;
            return None;
        }
        let fault = head.fault.clone();
        head.remaining = head.remaining.saturating_sub(1);
        if head.remaining == 0 {
            self.queue.pop_front();
        }
        Some(fault)
    }

    pub fn pending(&self) -> Value {
        Value::Array(
            self.queue
                .iter()
                .map(|s| json!({"after_pages": s.after, "times": s.remaining, "fault": s.fault.to_json()}))
                .collect(),
        )
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.requests.clear();
    }

    /// Drops pending faults, keeping the record of requests.
    pub fn clear_queue(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_wait_their_turn() {
        let mut f = LogFaults::default();
        f.push(2, 2, LogFault::Malformed);
        assert_eq!(f.take(), None);
        assert_eq!(f.take(), None);
        assert_eq!(f.take(), Some(LogFault::Malformed));
        assert_eq!(f.take(), Some(LogFault::Malformed));
        assert_eq!(f.take(), None);
    }

    #[test]
    fn parsing() {
        let f = LogFault::parse(&json!({"kind": "status", "status": 429, "retry_after": 3})).unwrap();
        assert_eq!(f, LogFault::Status { status: 429, retry_after: Some("3".into()), body: None });
        assert!(LogFault::parse(&json!({"kind": "status", "status": 200})).is_err());
        assert!(LogFault::parse(&json!({"kind": "nope"})).is_err());
        assert_eq!(LogFault::parse(&json!({"kind": "wrong_shape"})).unwrap(), LogFault::WrongShape);
    }
}
