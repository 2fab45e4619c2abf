//! The request as it arrives: which route (`route`), who may call it (`authenticate`), and
//! what a chat request asks for, read without copying it (`chat`), and its query string (`url`).

pub mod authenticate;
pub mod chat;
pub mod route;
pub mod url;

pub use chat::*;
