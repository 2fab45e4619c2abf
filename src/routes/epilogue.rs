//! How a request that called AI Gateway ends, on either route (chat, native): its response, its
//! ledger rows and its log line, each a projection of its one outcome
//! (`gateway_core::outcome::RequestOutcome`); a committed stream's books, rows and line at the
//! stream's end.

use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use gateway_core::attempt::settle_stream;
use gateway_core::engine::Record;
use gateway_core::error::GatewayError;
use gateway_core::ledger::Route;
use gateway_core::money::pricing::Usd;
use gateway_core::outcome::RequestOutcome;
use gateway_core::protocol::native::ProviderError;
use gateway_core::relay::Observer;
use worker::{Context, Env, Response, Result};

use crate::aig::runtime::{now, Settled};
use crate::durable::limiter::Reservation;
use crate::relay::{OnEnd, StreamEnd, Upstream};
use crate::respond::{answer_response, error_response_with, provider_error_response, stream_response};

/// What runs once a committed stream's books are closed: given how it ended and the request's
/// final decision headers (an idempotent replay repeats them).
pub type AfterStream = Box<dyn FnOnce(StreamEnd, Vec<(String, String)>) -> LocalBoxFuture<'static, ()>>;

/// A request's outcome on its way out, and the closes its ledger rows wait for.
pub struct Epilogue<'a> {
    env: &'a Env,
    wctx: &'a Rc<Context>,
    started: u64,
    pub outcome: RequestOutcome,
    /// The closes of the attempts made, once the engine ran: rows exist only for charges their
    /// limiters know.
    settled: Option<Settled>,
}

impl<'a> Epilogue<'a> {
    pub fn new(env: &'a Env, wctx: &'a Rc<Context>, route: Route, started: u64) -> Self {
        Epilogue { env, wctx, started, outcome: RequestOutcome::new(route), settled: None }
    }

    /// What the engine's run decided: its record, the answering provider's budget left, what
    /// the answers warned of, and the attempts' closes.
    pub fn ran(&mut self, record: Record, budget_remaining: Option<Usd>, warnings: Vec<String>, settled: Settled) {
        self.outcome.request_id = Some(crate::ledger::new_request_id(self.started));
        (self.outcome.record, self.outcome.budget_remaining) = (record, budget_remaining);
        self.outcome.warnings.extend(warnings);
        self.settled = Some(settled);
    }

    /// The request ends with the Worker's own error.
    pub fn error(&mut self, err: &GatewayError) -> Result<Response> {
        self.end(err.status(), Some(err.kind.code()));
        error_response_with(err, None, &self.outcome.headers())
    }

    /// The request ends with the provider's error, in its own shape.
    pub fn provider_error(&mut self, error: ProviderError) -> Response {
        self.end(error.status, Some("upstream_error"));
        provider_error_response(error, &self.outcome.headers())
    }

    /// The request ends with a whole answer: `body` as the caller gets it.
    pub fn whole(&mut self, status: u16, content_type: &str, body: Vec<u8>) -> Response {
        self.end(status, None);
        answer_response(status, content_type, body, &self.outcome.headers())
    }

    /// Its rows written (once the attempts' closes are acknowledged) and its line logged.
    fn end(&mut self, status: u16, error: Option<&'static str>) {
        (self.outcome.status, self.outcome.error) = (status, error);
        if let Some(settled) = self.settled.take() {
            crate::ledger::write_later(self.env, self.wctx, self.outcome.rows(), settled);
        }
        log(&self.outcome, self.started);
    }

    /// The answer is a committed stream: its headers now (without a cost: it is known at the
    /// end), and at its end its books closed (`reservation`, reserved at `worst_case`), its rows
    /// written, `after` run and its line logged.
    pub fn stream<O: Observer + 'static>(
        &mut self,
        status: u16,
        content_type: &str,
        upstream: Upstream<O>,
        reservation: Reservation,
        worst_case: Usd,
        after: Option<AfterStream>,
    ) -> Response {
        self.outcome.status = status;
        let headers = self.outcome.headers();
        let route = self.outcome.route;
        let mut outcome = std::mem::replace(&mut self.outcome, RequestOutcome::new(route));
        let settled = self.settled.take().unwrap_or_else(|| async {}.boxed_local());
        let (env, started) = (self.env.clone(), self.started);
        let on_end: OnEnd = Box::new(move |ended: StreamEnd| {
            Box::pin(async move {
                if let Some(warning) = &ended.warning {
                    worker::console_warn!("{warning}");
                    outcome.warnings.push(warning.clone());
                }
                let (end, books, health) = settle_stream(ended.end, outcome.cache_hit());
                let charge = books.charge(worst_case);
                futures_util::join!(reservation.close(books, health), settled);
                let error = ended.fault.as_ref().map(|f| f.kind.code());
                outcome.stream_ended(end, charge, ended.tokens, now(), error);
                crate::ledger::write(&env, &outcome.rows()).await;
                if let Some(after) = after {
                    after(ended, outcome.headers()).await;
                }
                log(&outcome, started);
            })
        });
        stream_response(status, content_type, &headers, upstream.into_body(self.wctx.clone(), on_end))
    }
}

/// The request's one structured log line.
fn log(outcome: &RequestOutcome, started: u64) {
    worker::console_log!("{}", outcome.log_line(now().saturating_sub(started)));
}
