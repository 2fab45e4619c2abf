//! The analytics vars, and the memory figure the views report.

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
