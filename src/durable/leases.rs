//! The isolate's side of the limiters' leases (`gateway_core::account::limits::local`): one
//! `LeaseTable` for the isolate's life. Everything that decides (admit, settle, when to report
//! what, when to give a lease back, when a report is lost) is the core's; this file keeps the
//! table, and the settle batch under way per limiter, so that every request whose settle it
//! carries waits for the same answer.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_util::future::{LocalBoxFuture, Shared};
use gateway_core::account::limits::local::LeaseTable;

thread_local! {
    static TABLE: RefCell<Option<LeaseTable>> = const { RefCell::new(None) };
    /// Per limiter: the batch of settles under way, and its number.
    static BATCHES: RefCell<HashMap<String, (u64, Batch)>> = RefCell::new(HashMap::new());
}

/// A batch of settles on its way: `true` when the limiter acknowledged it.
pub type Batch = Shared<LocalBoxFuture<'static, bool>>;

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

/// The batch under way at limiter `name`, if any.
pub fn batch(name: &str) -> Option<Batch> {
    BATCHES.with(|b| b.borrow().get(name).map(|(_, batch)| batch.clone()))
}

/// Batch `no` of limiter `name` is under way.
pub fn begin_batch(name: &str, no: u64, batch: Batch) {
    BATCHES.with(|b| b.borrow_mut().insert(name.to_owned(), (no, batch)));
}

/// Batch `no` of limiter `name` ended.
pub fn end_batch(name: &str, no: u64) {
    BATCHES.with(|b| {
        let mut batches = b.borrow_mut();
        if batches.get(name).is_some_and(|(n, _)| *n == no) {
            batches.remove(name);
        }
    });
}
