//! The functional core of agent-gateway.
//!
//! Everything that *decides* lives here as plain Rust over plain data, so it is unit-tested natively
//! with `cargo test` and knows nothing of the Workers runtime. The Worker shell (`src/` at the
//! repository root) only translates between the runtime and these functions.
//!
//! The modules follow a request's path through the gateway:
//!
//! | step                                | module                                              |
//! |-------------------------------------|-----------------------------------------------------|
//! | route, authenticate, read           | [`request`] (`route`, `authenticate`, `chat`)       |
//! | configuration                       | [`config`] (routing; `settings`: vars and secrets)  |
//! | plan attempts                       | [`plan`]                                            |
//! | the attempt loop                    | [`engine`] (`retry`: backoff, `Retry-After`)        |
//! | call AI Gateway, read its answers   | [`aig`] (`call`, `cache`, `answer`: classification) |
//! | relay / stream                      | [`relay`] (`sse`, `openai` observer, `pump`)        |
//! | tool calls across providers         | [`tools`] (`answer`, `history`, `memory`)           |
//! | is the answer what was asked        | [`output`] (`response_format`, JSON Schema)         |
//! | account                             | [`account`] (`pricing`, `limits`, `books`)          |
//! | respond                             | [`error`] (OpenAI error shape)                      |
//!
//! Beside the chat path: [`native`] (provider-native routes), [`idempotency`], [`analytics`]
//! (`/analytics`), [`admin`] (gateway management), [`subrequests`] (the back office's reads
//! planned against the platform's limit per request).

pub mod account;
pub mod admin;
pub mod aig;
pub mod analytics;
pub mod attempt;
pub mod config;
mod digest;
pub mod engine;
pub mod error;
pub mod histogram;
pub mod idempotency;
pub mod json;
pub mod ledger;
pub mod money;
pub mod names;
pub mod native;
pub mod outcome;
pub mod output;
pub mod percent;
pub mod plan;
pub mod protocol;
pub mod provider;
pub mod relay;
pub mod request;
pub mod secret;
pub mod subrequests;
pub mod time;
pub mod tools;
