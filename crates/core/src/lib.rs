//! The functional core of agent-gateway.
//!
//! Everything that *decides* lives here as plain Rust over plain data, so it is unit-tested natively
//! with `cargo test` and knows nothing of the Workers runtime. The Worker shell (`src/` at the
//! repository root) only translates between the runtime and these functions.
//!
//! The modules follow a request's path through the gateway:
//!
//! | step                 | module                                   |
//! |----------------------|------------------------------------------|
//! | route                | [`route`]                                |
//! | authenticate         | [`authenticate`]                         |
//! | read the request     | [`request`]                              |
//! | plan attempts        | [`config`], [`plan`]                     |
//! | call AI Gateway      | [`gateway`] (URL, headers, metadata)     |
//! | relay / stream       | [`relay`] (SSE observer), [`upstream`]   |
//! | respond              | [`error`] (OpenAI error shape)           |

pub mod admin;
pub mod analytics;
pub mod authenticate;
pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
pub mod gateway;
pub mod idempotency;
pub mod limits;
pub mod native;
pub mod plan;
pub mod pricing;
pub mod relay;
pub mod request;
pub mod retry;
pub mod route;
pub mod sse;
pub mod upstream;
