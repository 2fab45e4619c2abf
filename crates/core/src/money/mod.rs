//! Money: exact prices in integer picodollars and what a model's answer costs (`pricing`), what a
//! provider bills from the counts it reports (`usage`), and the cost an answer states in its own
//! `usage` (`stamp`). Below everything that charges, reserves or reports a cost.

pub mod pricing;
pub mod stamp;
pub mod usage;
