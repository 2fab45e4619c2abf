//! The functional core of agent-gateway.
//!
//! Everything that *decides* lives here as plain Rust over plain data, so it is unit-tested natively
//! with `cargo test` and knows nothing of the Workers runtime. The Worker shell (`src/` at the
//! repository root) only translates between the runtime and these functions.
//!
//! A request's path through the core: [`request`] reads and authenticates it, [`plan`] turns its
//! `model` into targets under the [`config`], the [`engine`] runs the attempt loop (reserving in
//! [`account`], each attempt sent and read as its [`protocol`] says, streams through [`relay`]),
//! and its [`outcome`] is what the response's headers, its log line and its [`ledger`] rows say.
//!
//! The modules, bottom-up: each uses only modules above it in this table, never one below, so the
//! graph of modules has no cycle (`tests/modules.rs` reads the sources and fails naming any use
//! this table does not allow).
//!
//! | module          | what it is                                                         | uses                                                                    |
//! |-----------------|--------------------------------------------------------------------|-------------------------------------------------------------------------|
//! | [`error`]       | the gateway's own errors, in the OpenAI error shape                | —                                                                       |
//! | [`json`]        | the one JSON reader of every parse                                 | —                                                                       |
//! | [`digest`]      | SHA-256 of length-prefixed parts, hex                              | —                                                                       |
//! | [`time`]        | UTC instants and days                                              | —                                                                       |
//! | [`histogram`]   | latency quantiles in bounded memory                                | —                                                                       |
//! | [`percent`]     | percent-decoding                                                   | —                                                                       |
//! | [`names`]       | one spelling per provider and model                                | —                                                                       |
//! | [`secret`]      | a secret value that `Debug` never prints                           | —                                                                       |
//! | [`provider`]    | the providers of the native routes and their wire formats          | —                                                                       |
//! | [`subrequests`] | a request's subrequests, planned against the platform's limit      | —                                                                       |
//! | [`money`]       | prices, usage, the cost an answer states (`pricing`, `usage`, `stamp`) | json, names                                                          |
//! | [`output`]      | `response_format`: what an answer must be, and whether it is       | error, json                                                             |
//! | [`tools`]       | tool calls across providers (`answer`, `history`, `memory`)        | digest, error, json                                                     |
//! | [`attempt`]     | one attempt's vocabulary: its end, books, outcome, health, meter   | error, money                                                            |
//! | [`ledger`]      | the ledger's row, its SQL and retention                            | histogram, money, time                                                  |
//! | [`request`]     | the request as it arrives: route, caller, tokens, the chat body    | digest, error, json, output, provider, secret, tools                    |
//! | [`account`]     | limits, budgets, scopes, the breaker, admission, alerts            | attempt, error, json, money, names, percent, request, subrequests, time |
//! | [`idempotency`] | a repeated request does not spend twice                            | digest, error, request                                                  |
//! | [`config`]      | configuration and settings, validated once                         | account, json, money, provider, request, secret, subrequests            |
//! | [`admin`]       | gateway management through the Cloudflare API                      | config, error, json, request                                            |
//! | [`analytics`]   | `/analytics`: AI Gateway's logs into cost, rollups, rendering      | account, config, error, histogram, json, money, names, percent, request, time |
//! | [`aig`]         | AI Gateway: how a call is addressed (`call`), cached, read (`answer`) | attempt, config, digest, error, money, request                       |
//! | [`engine`]      | the one attempt loop (`retry`: backoff, `Retry-After`)             | account, attempt, config, error, money                                  |
//! | [`plan`]        | a request's `model` into the ordered targets to try                | config, engine, error, money                                            |
//! | [`outcome`]     | what a request came to: its headers, log line and ledger rows      | aig, attempt, engine, ledger, money, names                              |
//! | [`relay`]       | the OpenAI stream's observer and the one pump (`sse`, `pump`)      | aig, attempt, error, money, output, tools                               |
//! | [`native`]      | provider-native routes: paths, shapes, credentials, streams        | aig, config, error, json, money, percent, provider, relay, request      |
//! | [`protocol`]    | what an attempt sends and how its answer is judged, per route      | aig, attempt, config, engine, error, money, names, native, output, provider, relay, request, tools |

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
