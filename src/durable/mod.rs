//! The Durable Objects and their clients: the provider limiter (reserve → close), the
//! idempotency store, and the state pattern both objects share (load, one step, persist).

pub mod idempotency;
pub mod idempotency_object;
pub mod leases;
pub mod limiter;
pub mod limiter_object;
pub mod state;
