//! The shell of `/analytics` (the analytics Worker, `--features analytics`; `binding` is the
//! gateway's way to it): reading the ledger (D1, through `crate::ledger`), AI Gateway's logs over `Fetch`, the
//! rollup Durable Object and its scheduled job, and the result cache. Every decision (pages, retries, what counts,
//! which days come from rollups, rendering) is `gateway_core::analytics`.

pub mod binding;
#[cfg(feature = "analytics")]
pub mod entry;
#[cfg(feature = "analytics")]
pub mod logs_client;
#[cfg(feature = "analytics")]
pub mod result_cache;
#[cfg(feature = "analytics")]
pub mod rollup_object;
#[cfg(feature = "analytics")]
pub mod rollups;
#[cfg(feature = "analytics")]
mod settings;
#[cfg(feature = "analytics")]
pub mod view;

#[cfg(feature = "analytics")]
pub use settings::{analytics_settings, wasm_memory_bytes};

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}
