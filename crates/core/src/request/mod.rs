//! The request as it arrives: which route (`route`), who may call it (`authenticate`), and
//! what a chat request asks for, read without copying it (`chat`).

pub mod authenticate;
pub mod chat;
pub mod route;

pub use chat::*;
