//! Integration tests: each starts a simulator on port 0 inside the test's runtime (or runs the
//! binary) and talks to it over plain HTTP/1.1.

mod azure_bedrock;
mod cli;
mod client;
mod dialects;
mod faults;
mod inference;
mod log_faults;
mod logs;
mod management;
mod usage_models;
