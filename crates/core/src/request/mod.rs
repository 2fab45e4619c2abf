//! The request as it arrives: which route (`route`), who may call it and who it is
//! (`authenticate`, with the scoped tokens of `tokens`), what a chat request asks for, read
//! without copying it (`chat`), and its query string (`url`).

pub mod authenticate;
pub mod caller;
pub mod chat;
pub mod route;
pub mod tokens;
pub mod url;

pub use chat::*;
