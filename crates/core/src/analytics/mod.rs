//! `/analytics`: AI Gateway's logs turned into cost per provider, model, agent, repository and
//! day — the pure part. The Worker shell (`src/analytics/`) fetches pages and stores rollups;
//! everything that parses, decides, counts and renders is here.
//!
//! | step                          | module          |
//! |-------------------------------|-----------------|
//! | who may read                  | [`access`]      |
//! | what is asked                 | [`query`]       |
//! | rollups or logs, which windows| [`plan`]        |
//! | the ledger's SQL and rows     | [`ledger`]      |
//! | one page of the Logs API      | [`logs`]        |
//! | paging, stopping, retrying    | [`pager`]       |
//! | one spelling per model        | [`crate::names`] |
//! | counting                      | [`metrics`], [`cells`], [`crate::histogram`] |
//! | the ledger vs AI Gateway      | [`reconcile`]   |
//! | the view                      | [`report`], [`render`] |
//! | knobs                         | [`settings`]    |
//! | instants and days             | [`crate::time`] |

pub mod access;
pub mod cells;
pub mod ledger;
pub mod logs;
pub mod metrics;
pub mod pager;
pub mod plan;
pub mod query;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod settings;
