//! The accounts: each provider's rate window and daily budget (`limits`, the state one Durable
//! Object keeps), how each way an attempt can
//! end closes its reservation (`books`), and the ledger of record (`ledger`: one row per attempt).

pub mod admission;
pub mod alerts;
pub mod breaker;
pub mod budgets;
pub mod limits;
pub mod listing;
pub mod scopes;
