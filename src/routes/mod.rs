//! One handler per route.

pub mod chat;
pub mod health;
pub mod models;
