//! Provider-native routes: `/{provider}/{rest}` forwarded to
//! `{AI_GATEWAY_URL}/{account}/{gateway}/{provider}/{rest}`, so a provider's own SDK works with
//! only its base URL changed.
//!
//! A native call goes through the same steps as a unified one, each a module here:
//!
//! | step                                   | module           |
//! |----------------------------------------|------------------|
//! | which provider, is the path safe       | [`crate::provider`], [`path`] |
//! | who is calling (the SDK's key header)  | [`credentials`]  |
//! | what the request asks (model, stream, max output) and its worst-case cost | [`shape`] |
//! | retry the same provider, or give up    | [`crate::engine::retry`] (`NextTarget` means give up here) |
//! | what the answer used (each wire format's usage), what it cost | [`usage`] |
//! | relaying a stream while reading it     | [`stream`]       |
//! | caching: off unless the caller asks    | [`cache`]        |
//!
//! Native calls never switch providers: the body is in the provider's own format, which no other
//! provider speaks.

pub mod cache;
pub mod credentials;
pub mod path;
pub mod shape;
pub mod stream;
pub mod usage;

pub use path::NativePath;
