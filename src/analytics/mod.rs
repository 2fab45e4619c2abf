//! The shell of `/analytics`: reading the ledger (D1, through `crate::ledger`), AI Gateway's logs over `Fetch`, the
//! rollup Durable Object and its scheduled job, and the result cache. Every decision (pages, retries, what counts,
//! which days come from rollups, rendering) is `gateway_core::analytics`.

pub mod logs_client;
pub mod result_cache;
pub mod rollup_object;
pub mod rollups;
mod settings;
pub mod view;

pub use settings::{analytics_settings, wasm_memory_bytes};

/// A refused `/analytics` request: the error in the OpenAI shape, and for a 401 the challenge
/// that makes a browser ask for the token (as the password) and retry.
pub fn refused(err: &gateway_core::error::GatewayError) -> worker::Result<worker::Response> {
    let mut response = crate::respond::error_response(err, None)?;
    if err.status() == 401 {
        response.headers_mut().set("www-authenticate", gateway_core::analytics::access::CHALLENGE)?;
    }
    Ok(response)
}

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}
