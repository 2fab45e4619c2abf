//! One handler per route.

pub mod admin;
#[cfg(feature = "analytics")]
pub mod analytics;
pub mod chat;
pub mod health;
pub mod limits;
pub mod models;
pub mod native;
