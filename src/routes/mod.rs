//! One handler per route.

pub mod admin;
pub mod analytics;
pub mod chat;
mod epilogue;
pub mod health;
pub mod limits;
pub mod models;
pub mod native;
