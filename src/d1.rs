//! The D1 database (binding `LEDGER`: the ledger of record, and the signature memory), called
//! through its JavaScript binding directly (`prepare`, `bind`, `run`, `all`, `batch`): a few
//! calls, where workers-rs's `d1` feature would bring its own layer into the wasm.

use gateway_core::ledger::Value;
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

/// Runs statements as one batch (D1 applies a batch as one transaction).
pub async fn batch(env: &Env, statements: &[(&str, Vec<Value>)]) -> Result<(), String> {
    async fn go(env: &Env, statements: &[(&str, Vec<Value>)]) -> Result<(), JsValue> {
        let db = database(env)?;
        let prepare = method(&db, "prepare")?;
        let bound = Array::new();
        for (sql, params) in statements {
            let statement = prepare.call1(&db, &JsValue::from_str(sql))?;
            let values: Array = params.iter().map(js_value).collect();
            bound.push(&method(&statement, "bind")?.apply(&statement, &values)?);
        }
        let batch = method(&db, "batch")?.call1(&db, &bound)?;
        JsFuture::from(batch.dyn_into::<Promise>()?).await?;
        Ok(())
    }
    go(env, statements).await.map_err(|e| describe(&e))
}

/// Runs one statement; the rows it changed.
pub async fn run(env: &Env, sql: &str, params: &[Value]) -> Result<u64, String> {
    async fn go(env: &Env, sql: &str, params: &[Value]) -> Result<u64, JsValue> {
        let db = database(env)?;
        let statement = method(&db, "prepare")?.call1(&db, &JsValue::from_str(sql))?;
        let values: Array = params.iter().map(js_value).collect();
        let bound = method(&statement, "bind")?.apply(&statement, &values)?;
        let result = JsFuture::from(method(&bound, "run")?.call0(&bound)?.dyn_into::<Promise>()?).await?;
        let meta = Reflect::get(&result, &"meta".into())?;
        Ok(Reflect::get(&meta, &"changes".into())?.as_f64().unwrap_or(0.0) as u64)
    }
    go(env, sql, params).await.map_err(|e| describe(&e))
}

/// Runs one read: its rows, D1's `results`, as JSON text for the core to parse
/// (sums the SQL casts to TEXT stay exact; JSON numbers here are small integers).
pub async fn all_json(env: &Env, sql: &str, params: &[Value]) -> Result<String, String> {
    async fn all(env: &Env, sql: &str, params: &[Value]) -> Result<String, JsValue> {
        let db = database(env)?;
        let statement = method(&db, "prepare")?.call1(&db, &JsValue::from_str(sql))?;
        let values: Array = params.iter().map(js_value).collect();
        let bound = method(&statement, "bind")?.apply(&statement, &values)?;
        let result = JsFuture::from(method(&bound, "all")?.call0(&bound)?.dyn_into::<Promise>()?).await?;
        let rows = Reflect::get(&result, &"results".into())?;
        js_sys::JSON::stringify(&rows)?.as_string().ok_or_else(|| JsValue::from_str("D1's results are not JSON"))
    }
    all(env, sql, params).await.map_err(|e| describe(&e))
}

/// Whether the `LEDGER` binding exists.
pub fn is_bound(env: &Env) -> bool {
    database(env).is_ok()
}

fn database(env: &Env) -> Result<JsValue, JsValue> {
    let db = Reflect::get(env.as_ref(), &"LEDGER".into())?;
    if db.is_undefined() {
        return Err(JsValue::from_str("no D1 binding `LEDGER` (see wrangler.toml)"));
    }
    Ok(db)
}

fn method(target: &JsValue, name: &str) -> Result<Function, JsValue> {
    Reflect::get(target, &name.into())?.dyn_into::<Function>()
}

fn js_value(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        // Times and counts: below 2^53, exact as a double.
        Value::Int(i) => JsValue::from_f64(*i as f64),
        Value::Text(t) => JsValue::from_str(t),
    }
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}
