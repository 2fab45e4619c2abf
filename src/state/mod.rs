//! The state Worker (`--features state`, wrangler.state.toml): its entry, and the gateway's
//! way to it over the `STATE` Service Binding. Its Durable Objects are `crate::durable`'s and
//! `crate::analytics::rollup_object`'s classes, compiled into its build only.

pub mod binding;
#[cfg(feature = "state")]
pub mod entry;
