//! Calling AI Gateway: the fetch with its deadlines (`fetch`), the engine's runtime over it
//! (`runtime`), and what each route sends and reads (`unified`, `native`).

pub mod fetch;
pub mod runtime;
