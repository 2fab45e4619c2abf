//! Calling AI Gateway: the fetch with its deadlines (`fetch`), and the engine's runtime over it
//! (`runtime`), which asks each route's protocol (`gateway_core::protocol`) what to send and how
//! an answer reads.

pub mod fetch;
pub mod runtime;
