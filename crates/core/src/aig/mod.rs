//! What AI Gateway is to this Worker: how a call is addressed and authenticated (`call`: URLs,
//! headers, `cf-aig-metadata`), how its cache is asked (`cache`), and how its answers and errors
//! read and classify (`answer`), and how an answer is judged: its cost, who answered, whether it
//! is what was asked (`judge`).

pub mod answer;
pub mod cache;
pub mod call;
