//! aig-sim: a local simulator of Cloudflare AI Gateway, for tests and demos.
//!
//! It answers like AI Gateway does (see `shared/reference/ai-gateway-api.md`): the compat and
//! REST OpenAI-compatible endpoints, provider-native paths (OpenAI, Workers AI, Azure OpenAI,
//! Anthropic, AWS Bedrock, Google AI Studio), the v4 Logs API (Legacy Logs) and gateway management API, with real
//! header and field names. The simulated "model" is deterministic (see the `answer` module), and a test
//! control API under `/__sim/` scripts faults, inspects requests and seeds logs.
//!
//! It shares no code with the gateway (`gateway-core` is not a dependency), though a few small
//! pieces look alike (civil dates, AI Gateway's refusal codes, id formats): a test passes only
//! when two independent readings of the reference agree, so a mistake in one cannot hide by
//! being made on both sides.
//!
//! | module        | role                                                            |
//! |---------------|-----------------------------------------------------------------|
//! | [`config`]    | command line and environment                                    |
//! | `answer`      | the deterministic simulated model                               |
//! | `router`      | path → handler, request log line                                |
//! | `inference`   | the shared pipeline: record, admit, cache, fault, answer, log   |
//! | `compat`      | compat and REST endpoints (OpenAI format)                       |
//! | `native`      | provider-native paths                                           |
//! | `formats`     | OpenAI, Anthropic and Gemini wire formats                       |
//! | `stream`      | sending bodies event by event, and breaking them on purpose     |
//! | `dialect`     | how each provider differs from clean OpenAI; history rules      |
//! | `models`      | retired and redirected models                                   |
//! | `faults`      | scripted upstream faults                                        |
//! | `logs`        | log rows, cost, the Logs API, synthetic seeding                 |
//! | `log_faults`  | scripted Logs API faults, record of list requests               |
//! | `gateways`    | gateway management API and stored provider keys                 |
//! | `control`     | `/__sim/` test control API                                      |
//! | `state`       | everything remembered                                           |

mod answer;
mod clock;
mod compat;
pub mod config;
mod control;
mod dialect;
mod faults;
mod formats;
mod gateways;
mod http;
mod ids;
mod inference;
mod log_faults;
mod logs;
mod models;
mod native;
mod router;
mod state;
mod stream;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use config::Config;

/// Serves on `listener` until `shutdown` completes. Connections still open then are left to the
/// runtime (they end when it shuts down), so a stalled request cannot hold up an exit.
pub async fn serve<F>(listener: TcpListener, config: Config, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    let state = Arc::new(state::State::new(config));
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| router::serve_request(state.clone(), req));
            // Errors here are clients going away or speaking bad HTTP; nothing to do about them.
            let _ =
                http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
