//! Idempotency: a repeated request does not spend twice.
//!
//! A caller's `Idempotency-Key` names one operation: a repeat gets the first answer (or waits for
//! it while it is still running); the same key with a different body is refused, since it cannot
//! be the same operation. GitHub's `X-GitHub-Delivery` names a webhook delivery, and one delivery
//! may lead to several different LLM calls, so there the key is the delivery *and* the body: a
//! redelivered webhook repeats each call exactly, and each repeat is answered from its first run.
//!
//! Keys are the caller's own: the record is named by the key *and* by who called
//! ([`Partition`]), so a replay only ever returns a caller's own answer. Another caller sending
//! the same key and body runs its own request, as if the key were new to the gateway: a 409
//! would tell it that somebody else used that key (an oracle across tenants), and one GitHub
//! delivery is legitimately handled by several agents, each of which must get its own answer.
//!
//! One Durable Object per key holds a [`Record`]; this module is its state machine. Only
//! successful answers are kept: after an error the key is freed, so a retry runs again.

use serde::{Deserialize, Serialize};

use crate::digest::{hex, sha256_of};
use crate::error::{ErrorKind, GatewayError};
use crate::request::authenticate::Partition;

/// How long an answer is kept for repeats.
pub const KEEP_MS: u64 = 24 * 60 * 60 * 1000;
/// The largest answer kept for replay; a larger one frees the key (the repeat runs again).
pub const MAX_STORED_BYTES: usize = 1024 * 1024;

/// The Durable Object name and the request's fingerprint, when the request asked for idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub object_name: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// From `Idempotency-Key` (preferred) or `X-GitHub-Delivery`, in `partition`; `None` when
    /// neither is sent.
    pub fn from_headers(
        idempotency_key: Option<&str>,
        github_delivery: Option<&str>,
        body: &[u8],
        partition: &Partition,
    ) -> Result<Option<IdempotencyKey>, GatewayError> {
        let named = |name: String| {
            Some(IdempotencyKey {
                object_name: format!("{}|{name}", partition.as_str()),
                fingerprint: hex_sha256(body),
            })
        };
        if let Some(key) = idempotency_key.map(str::trim).filter(|k| !k.is_empty()) {
            if key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    "Header `Idempotency-Key` must be 1-255 visible ASCII characters.",
                ));
            }
            return Ok(named(format!("key:{key}")));
        }
        if let Some(delivery) = github_delivery.map(str::trim).filter(|d| !d.is_empty()) {
            if delivery.len() > 128 || !delivery.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    "Header `X-GitHub-Delivery` must be a delivery GUID (letters, digits and `-`).",
                ));
            }
            return Ok(named(format!("gh:{delivery}:{}", hex_sha256(body))));
        }
        Ok(None)
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex(&sha256_of(&[bytes]))
}

/// A first answer, as kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    /// The first request is running; a repeat waits until `lease_until`, after which the first
    /// is presumed dead and the repeat runs instead.
    InFlight {
        lease_until: u64,
    },
    Done {
        answer: StoredAnswer,
    },
}

/// What one key's Durable Object keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    entry: Option<(String, State)>,
}

/// The answer to "may I run this request?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Begin {
    /// Run it (and `complete` or `abort` after).
    Proceed,
    /// It ran already: here is its answer.
    Replay { answer: StoredAnswer },
    /// It is running now: ask again shortly.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

impl Record {
    pub fn begin(&mut self, fingerprint: &str, now: u64, lease_ms: u64) -> Begin {
        match &self.entry {
            Some((fp, _)) if fp != fingerprint => Begin::Mismatch,
            Some((_, State::Done { answer })) => Begin::Replay { answer: answer.clone() },
            Some((_, State::InFlight { lease_until })) if *lease_until > now => Begin::InFlight,
            _ => {
                self.entry = Some((fingerprint.to_owned(), State::InFlight { lease_until: now + lease_ms }));
                Begin::Proceed
            }
        }
    }

    /// Keeps a successful answer for repeats (too large or not a success: frees the key instead).
    pub fn complete(&mut self, fingerprint: &str, answer: StoredAnswer) {
        if !self.owns(fingerprint) {
            return;
        }
        if (200..300).contains(&answer.status) && answer.body.len() <= MAX_STORED_BYTES {
            self.entry = Some((fingerprint.to_owned(), State::Done { answer }));
        } else {
            self.entry = None;
        }
    }

    /// The first run failed: a repeat may run again.
    pub fn abort(&mut self, fingerprint: &str) {
        if self.owns(fingerprint) && matches!(self.entry, Some((_, State::InFlight { .. }))) {
            self.entry = None;
        }
    }

    fn owns(&self, fingerprint: &str) -> bool {
        self.entry.as_ref().is_none_or(|(fp, _)| fp == fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::authenticate::Identity;

    fn answer(status: u16) -> StoredAnswer {
        StoredAnswer { status, headers: vec![("content-type".into(), "application/json".into())], body: "{}".into() }
    }

    #[test]
    fn first_runs_repeat_waits_then_replays() {
        let mut r = Record::default();
        assert_eq!(r.begin("fp", 0, 1000), Begin::Proceed);
        assert_eq!(r.begin("fp", 10, 1000), Begin::InFlight);
        r.complete("fp", answer(200));
        assert_eq!(r.begin("fp", 20, 1000), Begin::Replay { answer: answer(200) });
    }

    #[test]
    fn a_different_body_under_the_same_key_is_refused() {
        let mut r = Record::default();
        r.begin("fp", 0, 1000);
        assert_eq!(r.begin("other", 1, 1000), Begin::Mismatch);
        r.complete("other", answer(200)); // a stranger cannot overwrite
        assert_eq!(r.begin("fp", 2, 1000), Begin::InFlight);
    }

    #[test]
    fn errors_free_the_key_and_dead_runs_expire() {
        let mut r = Record::default();
        r.begin("fp", 0, 1000);
        r.complete("fp", answer(503));
        assert_eq!(r.begin("fp", 1, 1000), Begin::Proceed, "a failed first run is not replayed");
        r.abort("fp");
        assert_eq!(r.begin("fp", 2, 1000), Begin::Proceed);
        assert_eq!(r.begin("fp", 2000, 1000), Begin::Proceed, "the lease ran out");
        let mut big = answer(200);
        big.body = "x".repeat(MAX_STORED_BYTES + 1);
        r.complete("fp", big);
        assert_eq!(r.begin("fp", 2001, 1000), Begin::Proceed);
    }

    fn shared() -> Partition {
        Partition::of(&Identity::Agent, Some("agt-shared"))
    }

    #[test]
    fn keys_from_headers() {
        let p = shared();
        let k = IdempotencyKey::from_headers(Some("op-1"), Some("abc"), b"{}", &p).unwrap().unwrap();
        assert!(k.object_name.starts_with("token:") && k.object_name.ends_with("|key:op-1"), "{}", k.object_name);
        assert_eq!(k.fingerprint.len(), 64);
        let delivery = Some("72d3162e-cc78-11e3-81ab-4c9367dc0958");
        let d1 = IdempotencyKey::from_headers(None, delivery, b"{\"a\":1}", &p).unwrap().unwrap();
        let d2 = IdempotencyKey::from_headers(None, delivery, b"{\"a\":2}", &p).unwrap().unwrap();
        assert!(d1.object_name.contains("|gh:72d3162e-"));
        assert_ne!(d1.object_name, d2.object_name, "one delivery, two different calls");
        assert_eq!(IdempotencyKey::from_headers(None, None, b"{}", &p).unwrap(), None);
        assert!(IdempotencyKey::from_headers(Some("has space"), None, b"", &p).is_err());
        assert!(IdempotencyKey::from_headers(None, Some("../x"), b"", &p).is_err());
    }

    #[test]
    fn a_key_is_the_callers_own() {
        use crate::request::authenticate::AgentTokens;
        use crate::request::tokens::{token_hash, ScopedTokens};
        let scoped = ScopedTokens::parse(&format!(
            r#"{{"{}": {{"agent": "ReviewAgent"}}, "{}": {{"agent": "TriagingAgent"}}, "{}": {{"agent": "ReviewAgent"}}}}"#,
            token_hash("tok-review"),
            token_hash("tok-triage"),
            token_hash("tok-review-rotated")
        ))
        .unwrap();
        let tokens = AgentTokens { agent_token: Some("agt-shared"), scoped: &scoped };
        let name = |token: &str| {
            let partition = Partition::of(&tokens.identify(token).unwrap(), Some("agt-shared"));
            IdempotencyKey::from_headers(Some("op-1"), None, b"{}", &partition).unwrap().unwrap().object_name
        };
        let (review, triage, shared) = (name("tok-review"), name("tok-triage"), name("agt-shared"));
        assert!(review != triage && review != shared && triage != shared);
        assert_eq!(review, "agent:ReviewAgent|key:op-1");
        assert_eq!(name("tok-review-rotated"), review, "one agent, one caller, whichever of its tokens");
        // AGENT_TOKEN's partition is neither the token nor anything else computed from it.
        for (text, what) in [("agt-shared", "the token"), (token_hash("agt-shared").as_str(), "its plain hash")] {
            assert!(!shared.contains(text) && !shared.contains(&text[..32.min(text.len())]), "{what} in {shared}");
        }
        let other = Partition::of(&Identity::Agent, Some("agt-another"));
        assert_ne!(other, shared_partition(&tokens));
    }

    fn shared_partition(tokens: &crate::request::authenticate::AgentTokens<'_>) -> Partition {
        Partition::of(&tokens.identify("agt-shared").unwrap(), Some("agt-shared"))
    }

    #[test]
    fn begin_answers_serialise_with_a_state_tag() {
        let text = serde_json::to_string(&Begin::InFlight).unwrap();
        assert_eq!(text, r#"{"state":"in_flight"}"#);
        let back: Begin =
            crate::json::from_str(&serde_json::to_string(&Begin::Replay { answer: answer(200) }).unwrap()).unwrap();
        assert_eq!(back, Begin::Replay { answer: answer(200) });
    }
}
