//! agw: the operator's tool for agent-gateway. It sets up the Cloudflare AI Gateway the Worker
//! uses (`agw setup`) and checks a deployment end to end (`agw doctor`), over the Cloudflare API
//! and the gateway itself. Native only: it runs on the operator's machine, not in the Worker.
//!
//! | module   | role                                                   |
//! |----------|--------------------------------------------------------|
//! | `args`   | the command line (secrets are never arguments)          |
//! | `env`    | ids, URLs and tokens from the environment; what the routing configuration needs |
//! | `keys`   | provider keys from the environment or stdin            |
//! | `api`    | the HTTP client and the Cloudflare v4 envelope         |
//! | `setup`  | create/update the gateway, store keys                  |
//! | `doctor` | the end-to-end checks                                  |

pub mod api;
pub mod args;
pub mod doctor;
pub mod env;
pub mod keys;
pub mod setup;
