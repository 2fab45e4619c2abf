//! The Durable Objects and their clients: the provider limiter (reserve → close), the
//! idempotency store, and the state pattern both share (load, one step, persist). The gateway
//! compiles the clients; the objects (`*_object`, `state`) are the state Worker's.

pub mod idempotency;
#[cfg(feature = "state")]
pub mod idempotency_object;
pub mod leases;
pub mod limiter;
#[cfg(feature = "state")]
pub mod limiter_object;
#[cfg(feature = "state")]
pub mod state;
