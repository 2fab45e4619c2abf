//! The ledger (D1, binding `LEDGER`) as `/analytics` reads it: one prepared statement, its
//! integer parameters bound, all rows back as the JSON text of D1's `results`. The SQL and what
//! the rows mean are `gateway_core::analytics::{ledger, reconcile}`.
//!
//! Raw `prepare(sql).bind(..).all()` calls on the binding, not workers-rs's `d1` feature: these
//! three calls are all `/analytics` needs, and the rows go to the core as JSON anyway.

use worker::js_sys::{Array, Function, Promise, Reflect, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

pub const BINDING: &str = "LEDGER";

pub struct Ledger {
    db: JsValue,
}

/// A JavaScript error's message (D1's errors say what SQL or binding failed).
fn message(e: JsValue) -> String {
    Reflect::get(&e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

fn method(target: &JsValue, name: &str) -> Result<Function, String> {
    Reflect::get(target, &JsValue::from_str(name))
        .map_err(message)?
        .dyn_into::<Function>()
        .map_err(|_| format!("the {BINDING} binding has no `{name}`: is it a D1 database?"))
}

impl Ledger {
    /// `None` when the binding is missing.
    pub fn open(env: &Env) -> Option<Ledger> {
        let db = Reflect::get(env.as_ref(), &JsValue::from_str(BINDING)).ok()?;
        (!db.is_undefined() && !db.is_null()).then_some(Ledger { db })
    }

    /// The rows of `sql` with `params` bound in order, as JSON text.
    pub async fn all(&self, sql: &str, params: &[i64]) -> Result<String, String> {
        let stmt = method(&self.db, "prepare")?.call1(&self.db, &JsValue::from_str(sql)).map_err(message)?;
        let args: Array = params.iter().map(|p| JsValue::from_f64(*p as f64)).collect();
        let bound = method(&stmt, "bind")?.apply(&stmt, &args).map_err(message)?;
        let promise: Promise = method(&bound, "all")?
            .call0(&bound)
            .map_err(message)?
            .dyn_into()
            .map_err(|_| "D1's all() did not return a promise".to_owned())?;
        let result = JsFuture::from(promise).await.map_err(message)?;
        let rows = Reflect::get(&result, &JsValue::from_str("results")).map_err(message)?;
        JSON::stringify(&rows).map_err(message)?.as_string().ok_or_else(|| "D1's results are not JSON".to_owned())
    }
}
