//! One handler per route.

#[cfg(feature = "state")]
pub mod admin;
#[cfg(feature = "state")]
pub mod analytics;
pub mod chat;
pub mod health;
pub mod limits;
pub mod models;
pub mod native;
