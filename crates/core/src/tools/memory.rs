//! The signature memory's pure part: what the shell stores after an answer, and how it finds it
//! again before the next request's attempts.
//!
//! OpenAI clients do not carry Gemini's thought signature back: `runTools` replays only a call's
//! `{id, type, function}`, and Gemini 3 refuses the next turn without it. So the gateway keeps
//! what it relayed: for each call whose answer carried a signature, `(caller, call id) →
//! signature`, for [`SIGNATURE_TTL_MS`] (a tool loop's turns are seconds to minutes apart).
//! The shell writes the [`SignatureRecord`]s of an answer after it (D1), reads the ones a request
//! needs before its attempts ([`lookup_keys`]), and hands them to the history rewrite as its
//! lookup ([`crate::tools::ToolHistory::edits`]).
//!
//! - Only what Gemini issued is remembered ([`remembers`]: a Gemini family target), and only
//!   re-attached for Gemini 3 targets, the ones that require it (a Gemini 2.x target accepts a
//!   replay without one), and only to the model that issued it ([`lookup_for`]): Gemini refuses
//!   a signature it never issued ("Corrupted thought signature"), while the placeholder the
//!   history rewrite falls back to is always accepted, so after a failover from one Gemini 3
//!   model to another the placeholder is the safe choice.
//! - An entry is bound to its caller: the key is a hash of the caller's identity (a scoped
//!   token's agent, or a hash of the token: the shell decides and passes it as a string) and
//!   the call id, so one caller's history can never pick up another's signature, and neither
//!   the identity nor the id is stored in clear.
//! - A signature over [`MAX_SIGNATURE_BYTES`] is not stored (the answer still relays it).

use super::answer::IssuedSignature;
use super::ToolFamily;
use crate::digest::{hex, sha256_of};

/// How long a signature is kept: an hour.
pub const SIGNATURE_TTL_MS: u64 = 60 * 60 * 1000;

/// The largest signature kept (and the largest a lookup may return): 64 KiB. Gemini's are a
/// few hundred bytes to a few KB; D1 takes rows up to 2 MB, so this bound is the gateway's own.
pub const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// The most signatures kept from one answer (Gemini signs the first call of a step: one per
/// choice).
pub const MAX_SIGNATURES_PER_ANSWER: usize = 16;

/// One entry of the memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRecord {
    /// [`memory_key`] of the caller and the call id (64 hex digits).
    pub key: String,
    pub signature: String,
    /// The model that issued it (its name, without a path: the same on AI Studio and Vertex).
    pub model: String,
    /// When it stops being valid (ms since the epoch).
    pub expires_at_ms: u64,
}

/// A signature found in the memory for one of a request's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub call_id: String,
    pub signature: String,
    /// [`SignatureRecord::model`].
    pub model: String,
}

/// A model's name as the memory keeps it: the last path segment, lower case.
fn model_name(model: &str) -> String {
    model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase()
}

/// The key of `call_id`'s signature for `caller` (the caller's identity string).
pub fn memory_key(caller: &str, call_id: &str) -> String {
    hex(&sha256_of(&[b"thought-signature", caller.as_bytes(), call_id.as_bytes()]))
}

/// Whether signatures answered by `provider`/`model` are to be remembered: only Gemini's.
pub fn remembers(provider: &str, model: &str) -> bool {
    ToolFamily::of(provider, model).is_gemini()
}

/// The records to store after an answer of `provider`/`model` to `caller`, at `now_ms`: none
/// unless Gemini answered; signatures over the bound left out; at most
/// [`MAX_SIGNATURES_PER_ANSWER`].
pub fn to_remember(
    caller: &str,
    provider: &str,
    model: &str,
    issued: &[IssuedSignature],
    now_ms: u64,
) -> Vec<SignatureRecord> {
    if !remembers(provider, model) {
        return Vec::new();
    }
    issued
        .iter()
        .filter(|s| !s.signature.is_empty() && s.signature.len() <= MAX_SIGNATURE_BYTES)
        .take(MAX_SIGNATURES_PER_ANSWER)
        .map(|s| SignatureRecord {
            key: memory_key(caller, &s.call_id),
            signature: s.signature.clone(),
            model: model_name(model),
            expires_at_ms: now_ms.saturating_add(SIGNATURE_TTL_MS),
        })
        .collect()
}

/// The history rewrite's lookup for an attempt on `provider`/`model`: the remembered signature
/// of a call, when the target is Gemini 3 and the model is the one that issued it.
pub fn lookup_for<'r>(
    remembered: &'r [Remembered],
    provider: &str,
    model: &str,
) -> impl Fn(&str) -> Option<String> + 'r {
    let target = (ToolFamily::of(provider, model) == ToolFamily::Gemini3).then(|| model_name(model));
    move |call_id: &str| {
        let target = target.as_deref()?;
        remembered.iter().find(|r| r.call_id == call_id && r.model == target).map(|r| r.signature.clone())
    }
}

/// Whether a record that expires at `expires_at_ms` may still be used at `now_ms`.
pub fn is_fresh(expires_at_ms: u64, now_ms: u64) -> bool {
    now_ms < expires_at_ms
}

/// `(call id, key)` for each call whose signature a request will need looked up: none unless a
/// target of the plan is Gemini 3 (`family` of any target); `unsigned` is
/// [`crate::tools::ToolHistory::unsigned_first_calls`].
pub fn lookup_keys<'h>(
    caller: &str,
    families: &[ToolFamily],
    unsigned: impl Iterator<Item = &'h str>,
) -> Vec<(&'h str, String)> {
    if !families.contains(&ToolFamily::Gemini3) {
        return Vec::new();
    }
    unsigned.map(|id| (id, memory_key(caller, id))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(id: &str, signature: &str) -> IssuedSignature {
        IssuedSignature { call_id: id.into(), signature: signature.into() }
    }

    #[test]
    fn keys_bind_the_caller_and_the_call() {
        let k = memory_key("agent:review", "call_1");
        assert_eq!(k.len(), 64);
        assert_eq!(k, memory_key("agent:review", "call_1"));
        assert_ne!(k, memory_key("agent:triage", "call_1"));
        assert_ne!(k, memory_key("agent:review", "call_2"));
        assert_ne!(memory_key("a", "bc"), memory_key("ab", "c"));
    }

    #[test]
    fn only_what_gemini_issued_is_kept_within_the_bound() {
        let big = "x".repeat(MAX_SIGNATURE_BYTES + 1);
        let answer = [issued("c1", "U0lH"), issued("c2", &big), issued("c3", "")];
        let kept = to_remember("me", "google-ai-studio", "gemini-3-pro-preview", &answer, 1_000);
        assert_eq!(
            kept,
            vec![SignatureRecord {
                key: memory_key("me", "c1"),
                signature: "U0lH".into(),
                model: "gemini-3-pro-preview".into(),
                expires_at_ms: 1_000 + SIGNATURE_TTL_MS
            }]
        );
        assert_eq!(to_remember("me", "google-vertex-ai", "gemini-2.5-pro", &answer, 0).len(), 1);
        assert!(to_remember("me", "openai", "gpt-4o", &answer, 0).is_empty());
        assert!(to_remember("me", "google-vertex-ai", "claude-sonnet-4-5", &answer, 0).is_empty());
        let many: Vec<IssuedSignature> = (0..100).map(|i| issued(&format!("c{i}"), "s")).collect();
        assert_eq!(to_remember("me", "google-ai-studio", "gemini-3-flash", &many, 0).len(), MAX_SIGNATURES_PER_ANSWER);
        assert!(is_fresh(10, 9) && !is_fresh(10, 10));
    }

    #[test]
    fn lookups_are_asked_only_for_a_plan_with_gemini_3() {
        let ids = ["c1", "c3"];
        assert!(lookup_keys("me", &[ToolFamily::OpenAi, ToolFamily::Gemini], ids.into_iter()).is_empty());
        let keys = lookup_keys("me", &[ToolFamily::Gemini3, ToolFamily::OpenAi], ids.into_iter());
        assert_eq!(keys, vec![("c1", memory_key("me", "c1")), ("c3", memory_key("me", "c3"))]);
    }

    #[test]
    fn a_signature_goes_back_only_to_the_gemini_3_model_that_issued_it() {
        let kept =
            to_remember("me", "google-vertex-ai", "publishers/google/models/Gemini-3-Pro", &[issued("c1", "U0lH")], 0);
        let remembered: Vec<Remembered> = kept
            .into_iter()
            .map(|r| Remembered { call_id: "c1".into(), signature: r.signature, model: r.model })
            .collect();
        assert_eq!(lookup_for(&remembered, "google-ai-studio", "gemini-3-pro")("c1").as_deref(), Some("U0lH"));
        assert_eq!(lookup_for(&remembered, "google-ai-studio", "gemini-3-pro")("c2"), None);
        assert_eq!(lookup_for(&remembered, "google-ai-studio", "gemini-3-flash")("c1"), None, "another model");
        assert_eq!(lookup_for(&remembered, "google-ai-studio", "gemini-2.5-pro")("c1"), None, "not required");
        assert_eq!(lookup_for(&remembered, "openai", "gemini-3-pro")("c1"), None);
    }
}
