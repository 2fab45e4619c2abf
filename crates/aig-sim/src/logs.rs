//! Log rows, cost estimates, the v4 Logs API (Legacy Logs) and synthetic log seeding.
//!
//! Field names follow the real API (`tokens_in`, `tokens_out`, `cost`, `status_code`, `metadata`
//! as JSON *text*), and `per_page` is limited to 1..=50 like the OpenAPI schema says.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{json, Value};

use crate::clock;
use crate::http::{parse_query, query_param, v4_error, v4_not_found, v4_ok, Resp};
use crate::ids::{ulid, SplitMix64};
use crate::state::State;

/// One row of the gateway's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub id: String,
    pub created_at: String,
    pub provider: String,
    pub model: String,
    pub model_type: &'static str,
    pub path: String,
    /// Milliseconds from receiving the request to sending the response headers.
    pub duration: u64,
    pub success: bool,
    pub cached: bool,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    /// USD; omitted when the model has no known price (like the real estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    pub custom_cost: bool,
    /// The `cf-aig-metadata` header as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_content_type: Option<String>,
    pub status_code: u16,
    pub step: u32,
    #[serde(skip)]
    pub created_ms: i64,
    #[serde(skip)]
    pub gateway_id: String,
}

/// USD per million tokens (input, output), from public list prices. Matched on the model name
/// without any `author/` part, longest prefix first, so dated variants such as
/// `claude-sonnet-4-5-20250929` or `gpt-4o-2024-08-06` find their family.
const PRICES: &[(&str, f64, f64)] = &[
    ("gemini-2.5-flash", 0.30, 2.50),
    ("gemini-3.5-flash-lite", 0.30, 2.50),
    ("gemini-3.1-flash-lite", 0.25, 1.50),
    ("gemini-3.5-flash", 1.50, 9.00),
    ("gemini-3.6-flash", 1.50, 7.50),
    ("gemini-3-flash-preview", 0.50, 3.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("claude-sonnet-4-5", 3.00, 15.00),
    ("claude-haiku-4-5", 1.00, 5.00),
];

fn price(model: &str) -> Option<(f64, f64)> {
    let name = model.rsplit('/').next().unwrap_or(model);
    PRICES
        .iter()
        .filter(|(prefix, _, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|&(_, i, o)| (i, o))
}

/// The estimated cost of a call, or `None` when the model's price is unknown.
pub fn cost(model: &str, tokens_in: u64, tokens_out: u64) -> Option<f64> {
    price(model).map(|(i, o)| (tokens_in as f64 * i + tokens_out as f64 * o) / 1_000_000.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderBy {
    CreatedAt,
    Provider,
    Model,
    ModelType,
    Success,
    Cached,
}

/// A parsed `GET /logs` query.
#[derive(Debug, Clone)]
struct LogQuery {
    page: u64,
    per_page: u64,
    order_by: OrderBy,
    desc: bool,
    start: Option<i64>,
    end: Option<i64>,
    provider: Option<String>,
    model: Option<String>,
    success: Option<bool>,
    cached: Option<bool>,
}

fn parse_log_query(raw: &str) -> Result<LogQuery, String> {
    let q = parse_query(raw);
    let get = |name: &str| query_param(&q, name);
    let page = match get("page") {
        None => 1,
        Some(p) => p.parse::<u64>().ok().filter(|p| *p >= 1).ok_or("page must be an integer of at least 1")?,
    };
    let per_page = match get("per_page") {
        None => 20,
        Some(p) => p.parse::<u64>().ok().filter(|p| (1..=50).contains(p)).ok_or("per_page must be between 1 and 50")?,
    };
    let order_by = match get("order_by").unwrap_or("created_at") {
        "created_at" => OrderBy::CreatedAt,
        "provider" => OrderBy::Provider,
        "model" => OrderBy::Model,
        "model_type" => OrderBy::ModelType,
        "success" => OrderBy::Success,
        "cached" => OrderBy::Cached,
        other => return Err(format!("order_by `{other}` is not supported")),
    };
    // `direction` is the deprecated name of `order_by_direction`.
    let desc = match get("order_by_direction").or_else(|| get("direction")) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(format!("order_by_direction must be asc or desc, not `{other}`")),
    };
    let date = |name: &str| -> Result<Option<i64>, String> {
        get(name).map(|v| clock::parse_rfc3339(v).ok_or(format!("{name} must be an RFC 3339 date-time"))).transpose()
    };
    let boolean = |name: &str| -> Result<Option<bool>, String> {
        match get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(format!("{name} must be true or false")),
        }
    };
    Ok(LogQuery {
        page,
        per_page,
        order_by,
        desc,
        start: date("start_date")?,
        end: date("end_date")?,
        provider: get("provider").map(str::to_string),
        model: get("model").map(str::to_string),
        success: boolean("success")?,
        cached: boolean("cached")?,
    })
}

impl LogQuery {
    /// Everything but the page: queries with the same key select the same rows.
    fn memo_key(&self, gateway: &str) -> String {
        format!(
            "{gateway}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.order_by, self.desc, self.start, self.end, self.provider, self.model, self.success, self.cached
        )
    }

    fn matches(&self, row: &LogRow) -> bool {
        self.start.is_none_or(|s| row.created_ms >= s)
            && self.end.is_none_or(|e| row.created_ms <= e)
            && self.provider.as_deref().is_none_or(|p| row.provider == p)
            && self.model.as_deref().is_none_or(|m| row.model == m)
            && self.success.is_none_or(|s| row.success == s)
            && self.cached.is_none_or(|c| row.cached == c)
    }

    fn compare(&self, a: &LogRow, b: &LogRow) -> Ordering {
        match self.order_by {
            OrderBy::CreatedAt => a.created_ms.cmp(&b.created_ms),
            OrderBy::Provider => a.provider.cmp(&b.provider),
            OrderBy::Model => a.model.cmp(&b.model),
            OrderBy::ModelType => a.model_type.cmp(b.model_type),
            OrderBy::Success => a.success.cmp(&b.success),
            OrderBy::Cached => a.cached.cmp(&b.cached),
        }
    }
}

/// `GET …/gateways/{gateway}/logs`.
pub fn list(state: &State, gateway: &str, raw_query: &str) -> Resp {
    let fault = state.lock().log_faults.take();
    let resp = match fault {
        Some(fault) => fault.respond(),
        None => list_rows(state, gateway, raw_query),
    };
    let status = resp.status().as_u16();
    state.lock().log_faults.requests.push(json!({"query": raw_query, "status": status}));
    resp
}

fn list_rows(state: &State, gateway: &str, raw_query: &str) -> Resp {
    let query = match parse_log_query(raw_query) {
        Ok(q) => q,
        Err(message) => return v4_error(400, 7001, &message),
    };
    let mut inner = state.lock();
    if !inner.gateways.contains_key(gateway) {
        return v4_not_found();
    }
    // Which rows match, in order: remembered for the last query (a reader pages through the same
    // query), so each page costs its own rows, not a scan of every log.
    let key = query.memo_key(gateway);
    let fresh = inner.list_memo.as_ref().is_some_and(|m| m.key == key && m.version == inner.logs_version);
    if !fresh {
        let rows = matching_rows(&inner.logs, gateway, &query);
        inner.list_memo = Some(ListMemo { key, version: inner.logs_version, rows });
    }
    let matching = inner.list_memo.as_ref().map(|m| m.rows.as_slice()).unwrap_or_default();
    let total = matching.len();
    let skip = usize::try_from((query.page - 1).saturating_mul(query.per_page)).unwrap_or(usize::MAX);
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(query.per_page as usize)
        .map(|&i| serde_json::to_value(&inner.logs[i]).unwrap_or(Value::Null))
        .collect();
    let info = json!({
        "page": query.page,
        "per_page": query.per_page,
        "count": page.len(),
        "total_count": total,
    });
    v4_ok(200, Value::Array(page), Some(info))
}

/// The rows a query selects (by index into `logs`), in the order it asks for.
fn matching_rows(logs: &[LogRow], gateway: &str, query: &LogQuery) -> Vec<usize> {
    let wanted = |i: &usize| logs[*i].gateway_id == gateway && query.matches(&logs[*i]);
    if query.order_by == OrderBy::CreatedAt {
        // The rows are kept in created_at order (ties in insertion order, see `insert_rows`), so
        // the date range is a slice found by binary search.
        let from = query.start.map_or(0, |s| logs.partition_point(|r| r.created_ms < s));
        let to = query.end.map_or(logs.len(), |e| logs.partition_point(|r| r.created_ms <= e)).max(from);
        if query.desc {
            (from..to).rev().filter(wanted).collect()
        } else {
            (from..to).filter(wanted).collect()
        }
    } else {
        let mut rows: Vec<usize> = (0..logs.len()).filter(wanted).collect();
        // Stable sort: ties keep insertion order (reversed along with everything for `desc`).
        rows.sort_by(|a, b| query.compare(&logs[*a], &logs[*b]));
        if query.desc {
            rows.reverse();
        }
        rows
    }
}

/// The last list query's matching rows, valid while the logs are unchanged.
#[derive(Debug, Default)]
pub struct ListMemo {
    key: String,
    version: u64,
    rows: Vec<usize>,
}

/// Adds rows to the state's log (see [`insert_rows`]).
pub fn add_rows(inner: &mut crate::state::Inner, rows: Vec<LogRow>) {
    insert_rows(&mut inner.logs, rows);
    inner.logs_version += 1;
}

/// Adds rows, keeping `logs` sorted by `created_ms` with ties in insertion order (what a stable
/// sort of everything would give), which `list` relies on.
pub fn insert_rows(logs: &mut Vec<LogRow>, mut rows: Vec<LogRow>) {
    if rows.len() == 1 {
        let row = rows.remove(0);
        let at = logs.partition_point(|r| r.created_ms <= row.created_ms);
        logs.insert(at, row);
        return;
    }
    logs.extend(rows);
    logs.sort_by_key(|r| r.created_ms);
}

/// `GET …/gateways/{gateway}/logs/{id}`.
pub fn get(state: &State, gateway: &str, id: &str) -> Resp {
    let inner = state.lock();
    match inner.logs.iter().find(|r| r.gateway_id == gateway && r.id == id) {
        Some(row) => v4_ok(200, serde_json::to_value(row).unwrap_or(Value::Null), None),
        None => v4_not_found(),
    }
}

/// Parameters of `POST /__sim/logs/seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedSpec {
    pub count: u64,
    pub days: u64,
    pub seed: u64,
    pub end_ms: i64,
    pub gateway_id: String,
    /// Rows as agent-gateway's Worker makes them: metadata with `route`, `attempt` and `gateway`,
    /// fallback attempts (`attempt` > 1), and some answered rows without a `cost`.
    pub worker: bool,
    /// Model name → factor applied to the rows' `cost` (AI Gateway pricing differently from a
    /// caller's price table).
    pub price_drift: Vec<(String, f64)>,
}

/// Largest `count` one seed call accepts (a row is a few hundred bytes).
pub const MAX_SEED_COUNT: u64 = 1_000_000;

impl SeedSpec {
    pub fn parse(body: &Value, default_gateway: &str) -> Result<Self, String> {
        if !body.is_object() {
            return Err("body must be a JSON object".into());
        }
        let uint = |name: &str, default: u64| -> Result<u64, String> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_u64().ok_or(format!("{name} must be a non-negative integer")),
            }
        };
        let count = uint("count", 100)?;
        if count > MAX_SEED_COUNT {
            return Err(format!("count must be at most {MAX_SEED_COUNT}"));
        }
        let days = uint("days", 30)?;
        if !(1..=3650).contains(&days) {
            return Err("days must be between 1 and 3650".into());
        }
        let end_ms = match body.get("end") {
            None | Some(Value::Null) => clock::now_ms(),
            Some(Value::String(s)) => clock::parse_rfc3339(s).ok_or("end must be an RFC 3339 date-time")?,
            Some(_) => return Err("end must be an RFC 3339 date-time string".into()),
        };
        let gateway_id = match body.get("gateway_id") {
            None | Some(Value::Null) => default_gateway.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("gateway_id must be a string".into()),
        };
        let worker = match body.get("worker") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("worker must be a boolean".into()),
        };
        let price_drift = match body.get("price_drift") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(model, factor)| match factor.as_f64() {
                    Some(f) if f.is_finite() && f > 0.0 => Ok((model.clone(), f)),
                    _ => Err(format!("price_drift.{model} must be a positive number")),
                })
                .collect::<Result<Vec<_>, String>>()?,
            Some(_) => return Err("price_drift must be an object of model name to factor".into()),
        };
        Ok(Self { count, days, seed: uint("seed", 42)?, end_ms, gateway_id, worker, price_drift })
    }
}

/// (provider, model, path, weight): what the synthetic traffic is made of. The Workers AI model
/// has no price, so its rows have no `cost`.
const SEED_MIX: &[(&str, &str, &str, u64)] = &[
    ("google-ai-studio", "gemini-3.5-flash-lite", "v1beta/models/gemini-3.5-flash-lite:generateContent", 35),
    ("openai", "gpt-4o-mini", "chat/completions", 25),
    ("openai", "gpt-4o", "chat/completions", 10),
    ("anthropic", "claude-sonnet-4-5", "v1/messages", 12),
    ("anthropic", "claude-haiku-4-5", "v1/messages", 10),
    ("workers-ai", "@cf/meta/llama-3.1-8b-instruct", "v1/chat/completions", 8),
];
const SEED_AGENTS: &[&str] = &["TriagingAgent", "PRReviewAgent"];
const SEED_REPOS: &[&str] =
    &["acme/widgets", "acme/agent-gateway", "octo-org/docs", "octo-org/infra", "example/hello-world"];
const SEED_FAILURE_STATUSES: &[u16] = &[429, 500, 503];

/// Deterministic synthetic rows: the same spec always gives the same rows (ids included).
/// About 6 % are failures (429/500/503, null tokens, no cost), 15 % cache hits (cost 0), 8 %
/// Workers AI (no cost), 90 % carry `{"agent":…,"repo":…}` metadata.
pub fn synthesize(spec: &SeedSpec) -> Vec<LogRow> {
    let mut rng = SplitMix64::new(spec.seed);
    // The worker style draws from its own stream, so the rows themselves do not change with it.
    let mut style_rng = SplitMix64::new(spec.seed ^ 0x005E_ED0F_A6E7_u64);
    let span = spec.days.saturating_mul(86_400_000).max(1);
    let total_weight: u64 = SEED_MIX.iter().map(|m| m.3).sum();
    (0..spec.count)
        .map(|_| {
            let created_ms = spec.end_ms - rng.below(span) as i64;
            let mut pick = rng.below(total_weight);
            let &(provider, model, path, _) = SEED_MIX
                .iter()
                .find(|m| {
                    if pick < m.3 {
                        true
                    } else {
                        pick -= m.3;
                        false
                    }
                })
                .unwrap_or(&SEED_MIX[0]);
            let roll = rng.unit();
            let tokens_in = 200 + rng.below(8_000);
            let tokens_out = 20 + rng.below(1_500);
            let (status, cached, tokens, duration) = if roll < 0.06 {
                (*rng.pick(SEED_FAILURE_STATUSES), false, None, 50 + rng.below(30_000))
            } else if roll < 0.21 {
                (200, true, Some((tokens_in, tokens_out)), 3 + rng.below(40))
            } else {
                (200, false, Some((tokens_in, tokens_out)), 300 + rng.below(8_000))
            };
            let cost = match tokens {
                None => None,
                Some((i, o)) => cost(model, i, o).map(|c| if cached { 0.0 } else { c }),
            };
            let metadata = (rng.unit() < 0.9)
                .then(|| json!({"agent": rng.pick(SEED_AGENTS), "repo": rng.pick(SEED_REPOS)}).to_string());
            let streamed = rng.unit() < 0.3;
            let id = ulid(created_ms, (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()));
            let mut row = LogRow {
                id,
                created_at: clock::format_rfc3339_ms(created_ms),
                provider: provider.into(),
                model: model.into(),
                model_type: "chat",
                path: path.into(),
                duration,
                success: status < 400,
                cached,
                tokens_in: tokens.map(|t| t.0),
                tokens_out: tokens.map(|t| t.1),
                cost,
                custom_cost: false,
                metadata,
                request_content_type: Some("application/json".into()),
                response_content_type: Some(
                    if streamed && status < 400 { "text/event-stream" } else { "application/json" }.into(),
                ),
                status_code: status,
                step: 0,
                created_ms,
                gateway_id: spec.gateway_id.clone(),
            };
            if spec.worker {
                worker_style(&mut row, &mut style_rng);
            }
            if let Some((_, factor)) = spec.price_drift.iter().find(|(m, _)| *m == row.model) {
                if !row.cached {
                    row.cost = row.cost.map(|c| c * factor);
                }
            }
            row
        })
        .collect()
}

const SEED_ROUTES: &[&str] = &["triage", "review", "default"];

/// Rewrites a seeded row as the Worker's own traffic looks: its five metadata entries, an
/// attempt number (failures are mostly first attempts; about 9 % of answers come from a
/// fallback), and about 4 % of answered, priced rows without a `cost`.
fn worker_style(row: &mut LogRow, rng: &mut SplitMix64) {
    let caller: Value = row.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or(Value::Null);
    let route = *rng.pick(SEED_ROUTES);
    let roll = rng.unit();
    let attempt = match (row.success, roll) {
        (false, r) if r < 0.7 => 1,
        (false, _) => 2,
        (true, r) if r < 0.08 => 2,
        (true, r) if r < 0.09 => 3,
        _ => 1,
    };
    let mut meta = serde_json::Map::new();
    for key in ["agent", "repo"] {
        if let Some(v) = caller.get(key) {
            meta.insert(key.into(), v.clone());
        }
    }
    meta.insert("route".into(), json!(route));
    meta.insert("attempt".into(), json!(attempt));
    meta.insert("gateway".into(), json!("agent-gateway"));
    row.metadata = Some(Value::Object(meta).to_string());
    if row.success && !row.cached && row.cost.is_some() && rng.unit() < 0.04 {
        row.cost = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(cost("gpt-4o-mini", 1_000_000, 0), Some(0.15));
        assert_eq!(cost("gpt-4o-2024-08-06", 0, 1_000_000), Some(10.0));
        assert_eq!(cost("claude-sonnet-4-5-20250929", 1_000_000, 1_000_000), Some(18.0));
        assert_eq!(cost("google/gemini-2.5-flash", 1_000_000, 0), Some(0.30));
        assert_eq!(cost("@cf/meta/llama-3.1-8b-instruct", 10, 10), None);
    }

    #[test]
    fn query_validation() {
        assert!(parse_log_query("per_page=51").is_err());
        assert!(parse_log_query("per_page=0").is_err());
        assert!(parse_log_query("page=0").is_err());
        assert!(parse_log_query("order_by=cost").is_err());
        assert!(parse_log_query("start_date=yesterday").is_err());
        assert!(parse_log_query("cached=yes").is_err());
        let q = parse_log_query("per_page=50&order_by_direction=asc&success=false").unwrap();
        assert_eq!((q.page, q.per_page, q.desc, q.success), (1, 50, false, Some(false)));
    }

    #[test]
    fn rows_stay_in_time_order_ties_in_insertion_order() {
        let spec =
            SeedSpec::parse(&json!({"count": 500, "days": 1, "seed": 3, "end": "2026-08-20T00:00:00Z"}), "gw").unwrap();
        let mut logs = Vec::new();
        insert_rows(&mut logs, synthesize(&spec));
        let tie = logs[100].created_ms;
        let mut extra = logs[100].clone();
        extra.id = "tie".into();
        insert_rows(&mut logs, vec![extra]);
        insert_rows(&mut logs, synthesize(&SeedSpec { seed: 4, ..spec }));
        assert_eq!(logs.len(), 1001);
        assert!(logs.windows(2).all(|w| w[0].created_ms <= w[1].created_ms));
        let at = logs.iter().position(|r| r.id == "tie").unwrap();
        assert_eq!(logs[at - 1].created_ms, tie, "after the row it ties with");
    }

    #[test]
    fn worker_style_seeding_and_price_drift() {
        let base = json!({"count": 3000, "days": 30, "seed": 7, "end": "2026-08-20T00:00:00Z"});
        let plain = synthesize(&SeedSpec::parse(&base, "gw").unwrap());
        let mut body = base.clone();
        body["worker"] = json!(true);
        body["price_drift"] = json!({"gpt-4o": 1.1});
        let spec = SeedSpec::parse(&body, "gw").unwrap();
        let rows = synthesize(&spec);
        assert_eq!(rows.len(), plain.len());
        let meta = |r: &LogRow| -> Value { serde_json::from_str(r.metadata.as_deref().unwrap()).unwrap() };
        assert!(rows.iter().all(|r| meta(r)["gateway"] == "agent-gateway" && meta(r)["attempt"].is_u64()));
        assert!(rows.iter().any(|r| r.success && meta(r)["attempt"] == 2));
        assert!(rows.iter().any(|r| r.success && !r.cached && r.cost.is_none() && cost(&r.model, 1, 1).is_some()));
        for (p, w) in plain.iter().zip(&rows) {
            assert_eq!((p.created_ms, &p.model, p.success, p.cached), (w.created_ms, &w.model, w.success, w.cached));
            if w.model == "gpt-4o" && !w.cached {
                if let (Some(a), Some(b)) = (p.cost, w.cost) {
                    assert!((b - a * 1.1).abs() < 1e-15);
                }
            }
        }
        assert!(SeedSpec::parse(&json!({"price_drift": {"m": -1}}), "gw").is_err());
        assert!(SeedSpec::parse(&json!({"worker": "yes"}), "gw").is_err());
    }

    #[test]
    fn seeding_is_deterministic_and_varied() {
        let spec = SeedSpec::parse(&json!({"count": 2000, "days": 30, "seed": 7, "end": "2026-08-20T00:00:00Z"}), "gw")
            .unwrap();
        let a = synthesize(&spec);
        let b = synthesize(&spec);
        let ser = |rows: &[LogRow]| serde_json::to_string(rows).unwrap();
        assert_eq!(ser(&a), ser(&b));
        let other = synthesize(&SeedSpec { seed: 8, ..spec.clone() });
        assert_ne!(ser(&a), ser(&other));

        let end = spec.end_ms;
        assert!(a.iter().all(|r| r.created_ms <= end && r.created_ms > end - 30 * 86_400_000));
        assert!(a.iter().any(|r| !r.success && r.tokens_in.is_none() && r.cost.is_none()));
        assert!(a.iter().any(|r| r.cached && r.cost == Some(0.0)));
        assert!(a.iter().any(|r| r.success && !r.cached && r.cost.is_none()));
        assert!(a.iter().any(|r| r.metadata.as_deref().is_some_and(|m| m.contains("PRReviewAgent"))));
        let providers: std::collections::HashSet<_> = a.iter().map(|r| r.provider.as_str()).collect();
        assert_eq!(providers.len(), 4);
    }
}
