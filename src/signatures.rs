//! The signature memory's shell (`gateway_core::tools::memory`): Gemini's thought signatures
//! this gateway relayed, in D1 (table `signatures`), written after an answer (in `waitUntil`)
//! and read before a tool loop's next request, so that clients which drop unknown fields (the
//! OpenAI SDK's `runTools`) still work on Gemini 3. A read or write that fails costs the
//! request nothing: the history rewrite falls back to the documented placeholder.

use gateway_core::ledger::Value;
use gateway_core::tools::memory::{Remembered, SignatureRecord};
use worker::Env;

const UPSERT: &str = "INSERT OR REPLACE INTO signatures (key, signature, model, expires_at_ms) VALUES (?1, ?2, ?3, ?4)";
const PRUNE: &str = "DELETE FROM signatures WHERE expires_at_ms <= ?1";

/// The most keys one read asks for (D1 binds at most 100 parameters per statement).
const MAX_KEYS: usize = 90;

/// Stores an answer's records (nothing when there are none).
pub async fn remember(env: &Env, records: Vec<SignatureRecord>) {
    if records.is_empty() {
        return;
    }
    let statements: Vec<(&str, Vec<Value>)> = records
        .into_iter()
        .map(|r| {
            let params = vec![
                Value::Text(r.key),
                Value::Text(r.signature),
                Value::Text(r.model),
                Value::Int(r.expires_at_ms as i64),
            ];
            (UPSERT, params)
        })
        .collect();
    if let Err(error) = crate::d1::batch(env, &statements).await {
        let line = serde_json::json!({"event": "signatures_write_failed", "error": error});
        worker::console_error!("{line}");
    }
}

/// The fresh records of `keys` (`(call id, key)`, from `memory::lookup_keys`).
pub async fn recall(env: &Env, keys: &[(&str, String)], now_ms: u64) -> Vec<Remembered> {
    #[derive(serde::Deserialize)]
    struct Found {
        key: String,
        signature: String,
        model: String,
    }
    let keys = &keys[..keys.len().min(MAX_KEYS)];
    if keys.is_empty() {
        return Vec::new();
    }
    let placeholders: Vec<String> = (2..keys.len() + 2).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "SELECT key, signature, model FROM signatures WHERE expires_at_ms > ?1 AND key IN ({})",
        placeholders.join(", ")
    );
    let mut params = vec![Value::Int(now_ms as i64)];
    params.extend(keys.iter().map(|(_, key)| Value::Text(key.clone())));
    let found: Vec<Found> = match crate::d1::all_json(env, &sql, &params).await {
        Ok(text) => gateway_core::json::from_str(&text).unwrap_or_default(),
        Err(error) => {
            let line = serde_json::json!({"event": "signatures_read_failed", "error": error});
            worker::console_error!("{line}");
            return Vec::new();
        }
    };
    found
        .into_iter()
        .filter_map(|f| {
            let (call_id, _) = keys.iter().find(|(_, key)| *key == f.key)?;
            Some(Remembered { call_id: (*call_id).to_owned(), signature: f.signature, model: f.model })
        })
        .collect()
}

/// The cron's part: deletes what expired; how many rows went.
pub async fn prune(env: &Env, now_ms: u64) -> Result<u64, String> {
    crate::d1::run(env, PRUNE, &[Value::Int(now_ms as i64)]).await
}
