//! One handler per route.

pub mod admin;
pub mod analytics;
pub mod chat;
pub mod health;
pub mod limits;
pub mod models;
pub mod native;
