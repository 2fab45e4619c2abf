//! Reading one time window of AI Gateway's logs over `worker::Fetch`: up to N pages at once,
//! each retried as `gateway_core::analytics::pager` says, handed row by row to the caller (who
//! counts them into cells, or keeps a bounded few for the ledger's cross-check) and then dropped,
//! so memory stays at a few pages whatever the number of logs.

use std::cell::Cell;
use std::time::Duration;

use futures_util::future::{join_all, select, Either};
use gateway_core::analytics::logs::{read_page, LogEntry, LogPage, LogsEndpoint, LogsFailure, Window};
use gateway_core::analytics::pager::{retry_delay_ms, Pager};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

/// Time allowed for one page to answer.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LogsClient<'a> {
    pub endpoint: LogsEndpoint,
    pub token: &'a str,
    pub parallel: u32,
    /// Requests it may still make, retries included (the request's subrequest budget): no page
    /// is asked for, and no failure retried, past it.
    pub requests_left: &'a Cell<u32>,
}

/// How reading a window ended.
pub struct WindowRead {
    pub pager: Pager,
    /// The failure that ended the read early, after retries.
    pub failure: Option<LogsFailure>,
    /// Pages asked for, retries included (subrequests spent).
    pub requests: u32,
    /// The read stopped with pages left because `requests_left` ran out.
    pub out_of_requests: bool,
}

impl WindowRead {
    /// Whether every row of the window was read.
    pub fn complete(&self) -> bool {
        self.failure.is_none() && self.pager.is_done()
    }
}

impl LogsClient<'_> {
    /// Takes one request from what is left; false when nothing is.
    fn take_request(&self) -> bool {
        let left = self.requests_left.get();
        self.requests_left.set(left.saturating_sub(1));
        left > 0
    }
}

impl LogsClient<'_> {
    /// Reads `window` from `start_page`, each row to `sink`, at most `max_pages` pages (None: all).
    pub async fn read(
        &self,
        window: Window,
        start_page: u32,
        max_pages: Option<u32>,
        sink: &mut dyn FnMut(&LogEntry),
    ) -> WindowRead {
        let mut pager = Pager::resume_at(start_page);
        let mut requests = 0;
        let mut pages = 0;
        loop {
            let mut batch = pager.next_pages(self.parallel);
            if let Some(max) = max_pages {
                batch.truncate(max.saturating_sub(pages) as usize);
            }
            let wanted = !batch.is_empty();
            // Each page's first request is taken when its future is first polled, before any
            // retry: a batch of what is left has room for all of them.
            batch.truncate(self.requests_left.get() as usize);
            if batch.is_empty() {
                return WindowRead { pager, failure: None, requests, out_of_requests: wanted };
            }
            let results = join_all(batch.iter().map(|page| self.page_with_retries(window, *page))).await;
            // Pages are taken in order; after a failure the rest of the batch is dropped, so what
            // was read is always pages start..k.
            for (page, (result, tries)) in batch.iter().zip(results) {
                requests += tries;
                match result {
                    Ok(p) => {
                        p.entries.iter().for_each(&mut *sink);
                        pager.accept(*page, &p);
                        pages += 1;
                    }
                    Err(failure) => {
                        return WindowRead { pager, failure: Some(failure), requests, out_of_requests: false }
                    }
                }
            }
        }
    }

    /// One page, retried on 429 (honouring `Retry-After`), 5xx and connection errors.
    async fn page_with_retries(&self, window: Window, page: u32) -> (Result<LogPage, LogsFailure>, u32) {
        let url = self.endpoint.page_url(window, page);
        let mut tries = 0;
        let mut result = Err(LogsFailure::Unreachable("no request was left for this page".into()));
        while self.take_request() {
            tries += 1;
            result = self.get(&url).await;
            match result {
                Err(ref failure) => match retry_delay_ms(failure, tries - 1) {
                    Some(ms) => Delay::from(Duration::from_millis(ms)).await,
                    None => return (result, tries),
                },
                Ok(_) => return (result, tries),
            }
        }
        (result, tries)
    }

    async fn get(&self, url: &str) -> Result<LogPage, LogsFailure> {
        let headers = Headers::new();
        let _ = headers.set("accept", "application/json");
        headers
            .set("authorization", &format!("Bearer {}", self.token))
            .map_err(|_| LogsFailure::Unreachable("CF_API_TOKEN is not a valid header value".into()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        let request = Request::new_with_init(url, &init).map_err(|e| LogsFailure::Unreachable(e.to_string()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let send = Box::pin(fetch.send_with_signal(&signal));
        let mut response = match select(send, Delay::from(PAGE_TIMEOUT)).await {
            Either::Left((Ok(response), _)) => response,
            Either::Left((Err(e), _)) => return Err(LogsFailure::Unreachable(e.to_string())),
            Either::Right(_) => {
                controller.abort();
                return Err(LogsFailure::Timeout);
            }
        };
        let status = response.status_code();
        let retry_after = response.headers().get("retry-after").ok().flatten();
        let body = match select(Box::pin(response.text()), Delay::from(PAGE_TIMEOUT)).await {
            Either::Left((Ok(body), _)) => body,
            Either::Left((Err(e), _)) => {
                return Err(LogsFailure::Malformed(format!("the body could not be read: {e}")))
            }
            Either::Right(_) => {
                controller.abort();
                return Err(LogsFailure::Timeout);
            }
        };
        read_page(status, retry_after.as_deref(), &body)
    }
}
