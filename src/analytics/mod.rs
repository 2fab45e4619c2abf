//! The shell of `/analytics`: reading the ledger (D1, through `crate::ledger`), AI Gateway's logs over `Fetch`, the
//! rollup Durable Object and its scheduled job, and the result cache. Every decision (pages, retries, what counts,
//! which days come from rollups, rendering) is `gateway_core::analytics`.

pub mod logs_client;
pub mod result_cache;
pub mod rollup_object;
pub mod rollups;
pub mod view;

use std::rc::Rc;

use gateway_core::analytics::settings::AnalyticsSettings;
use worker::Env;

thread_local! {
    static SETTINGS: std::cell::OnceCell<Rc<AnalyticsSettings>> = const { std::cell::OnceCell::new() };
}

/// The analytics vars, read once per isolate (problems logged by name, defaults used).
pub fn analytics_settings(env: &Env) -> Rc<AnalyticsSettings> {
    SETTINGS.with(|cell| {
        cell.get_or_init(|| {
            let (settings, invalid) = AnalyticsSettings::read(|name| env.var(name).ok().map(|v| v.to_string()));
            for problem in invalid {
                worker::console_error!("invalid setting: {problem}");
            }
            Rc::new(settings)
        })
        .clone()
    })
}

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// The Worker's wasm linear memory, in bytes. It only ever grows, so this is its peak: the
/// benchmark reads it to show memory does not grow with the number of logs.
pub fn wasm_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
