//! The isolate's side of the limiters' leases (`gateway_core::account::limits::local`): one
//! `LeaseTable` for the isolate's life. Everything that decides (admit, settle, when to report
//! what, when to give a lease back, when a report is lost) is the core's; this file keeps the
//! table. No future is kept here: one request never awaits another's (a request's work woken
//! from another request's context would run on that request's behalf).

use gateway_core::account::limits::local::LeaseTable;
use std::cell::RefCell;

thread_local! {
    static TABLE: RefCell<Option<LeaseTable>> = const { RefCell::new(None) };
}

/// Runs `f` on this isolate's lease table, made on first use (its leases asked for
/// `lease_ttl_ms`, 0: the limiter's default). Never held across an await.
pub fn with<T>(lease_ttl_ms: u64, f: impl FnOnce(&mut LeaseTable) -> T) -> T {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let table = table.get_or_insert_with(|| {
            // One lease id per isolate, the same at every limiter (each keeps one lease per id).
            let id = format!("isolate-{:x}", (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64);
            LeaseTable::new(id, lease_ttl_ms)
        });
        f(table)
    })
}
