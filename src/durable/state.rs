//! The one pattern both Durable Objects share: a small state kept in memory, loaded from storage
//! on first use, changed by one synchronous step per event, and written back before the answer.
//!
//! The step runs without an `await` in the middle, so no other event can interleave with it; the
//! write is awaited before the answer leaves (the output gate), so an answer never reports a state
//! that could be lost. The state is stored as JSON text: amounts of money keep their exact digits.

use std::cell::RefCell;

use serde::{de::DeserializeOwned, Serialize};
use worker::{Request, Result, State};

const KEY: &str = "state";

pub struct JsonState<T> {
    cell: RefCell<Option<T>>,
}

impl<T: Default + Serialize + DeserializeOwned> JsonState<T> {
    pub fn new() -> Self {
        JsonState { cell: RefCell::new(None) }
    }

    /// Applies `step` to the state and persists the result.
    pub async fn update<R>(&self, state: &State, step: impl FnOnce(&mut T) -> R) -> Result<R> {
        if self.cell.borrow().is_none() {
            let stored: Option<String> = state.storage().get(KEY).await?;
            let loaded = stored.and_then(|s| gateway_core::json::from_str(&s).ok()).unwrap_or_default();
            self.cell.borrow_mut().get_or_insert(loaded);
        }
        let (result, persisted) = {
            let mut guard = self.cell.borrow_mut();
            let value = guard.get_or_insert_with(T::default);
            let result = step(value);
            (result, serde_json::to_string(&*value)?)
        };
        state.storage().put(KEY, persisted).await?;
        Ok(result)
    }

    /// Forgets the state, in memory and in storage.
    pub async fn clear(&self, state: &State) -> Result<()> {
        state.storage().delete_all().await?;
        *self.cell.borrow_mut() = None;
        Ok(())
    }
}

/// A Durable Object's request body as JSON, in one read.
pub async fn request_json<T: serde::de::DeserializeOwned>(req: &Request) -> worker::Result<T> {
    Ok(serde_json::from_slice(&crate::aig::fetch::whole_body(req.inner().array_buffer()).await?)?)
}
