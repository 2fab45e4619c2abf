//! The Durable Objects and their clients: the provider limiter (reserve → close), the
//! idempotency store, and the state pattern both share (load, one step, persist).

pub mod idempotency;
pub mod leases;
pub mod limiter;
#[cfg(not(feature = "analytics"))]
pub mod limiter_object;
pub mod state;
