//! Paging through one time window of logs: which pages to ask for next, when the end is reached,
//! whether the pages added up, and when a failed page is worth asking again.
//!
//! The first page's `total_count` fixes how many pages there are, so the reader stops exactly at
//! the end (no extra empty page) and may ask for several pages at once. Pages are accepted in
//! order only: after a failure, what was read is a clean prefix (pages 1..k), which is what a
//! partial result reports and what a rollup resumes from.

use crate::analytics::logs::{LogPage, LogsFailure, PER_PAGE};

/// Retries per page, after the first try.
pub const MAX_RETRIES: u32 = 2;
/// Longest `Retry-After` honoured inside one request; longer waits end the read (partial).
pub const MAX_RETRY_WAIT_S: u64 = 5;

/// How long to wait before asking for a failed page again, or `None` to give up.
pub fn retry_delay_ms(failure: &LogsFailure, retries_done: u32) -> Option<u64> {
    if retries_done >= MAX_RETRIES {
        return None;
    }
    match failure {
        LogsFailure::RateLimited { retry_after_s } => {
            let wait = retry_after_s.unwrap_or(1);
            (wait <= MAX_RETRY_WAIT_S).then_some(wait * 1000)
        }
        LogsFailure::Server { .. } | LogsFailure::Unreachable(_) | LogsFailure::Timeout => Some(250u64 << retries_done),
        // The same token, query or body would fail the same way.
        LogsFailure::Unauthorized { .. } | LogsFailure::Rejected { .. } | LogsFailure::Malformed(_) => None,
    }
}

/// The state of reading one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pager {
    first_page: u32,
    next: u32,
    /// The last page, once a `total_count` is known.
    last: Option<u32>,
    total: Option<u64>,
    read: u64,
    pages: u32,
    done: bool,
    /// Set when the pages did not add up to `total_count`.
    inconsistency: Option<String>,
}

impl Default for Pager {
    fn default() -> Self {
        Pager::resume_at(1)
    }
}

impl Pager {
    pub fn new() -> Pager {
        Pager::default()
    }

    /// Starts at `page` (a rollup resuming a day it had begun).
    pub fn resume_at(page: u32) -> Pager {
        let page = page.max(1);
        Pager {
            first_page: page,
            next: page,
            last: None,
            total: None,
            read: 0,
            pages: 0,
            done: false,
            inconsistency: None,
        }
    }

    /// The pages to ask for next: one until the count is known, then up to `parallel`.
    pub fn next_pages(&self, parallel: u32) -> Vec<u32> {
        if self.done {
            return Vec::new();
        }
        match self.last {
            None => vec![self.next],
            Some(last) => (self.next..=last).take(parallel.max(1) as usize).collect(),
        }
    }

    /// Takes page `number` (which must be the next one) into account.
    pub fn accept(&mut self, number: u32, page: &LogPage) {
        debug_assert_eq!(number, self.next, "pages are accepted in order");
        let n = page.entries.len() as u64;
        self.read += n;
        self.pages += 1;
        if self.total.is_none() {
            if let Some(total) = page.info.total_count {
                self.total = Some(total);
                self.last = Some(total.div_ceil(u64::from(PER_PAGE)).min(u64::from(u32::MAX)) as u32);
            }
        }
        self.next = number + 1;
        let short = n < u64::from(PER_PAGE);
        let past_last = self.last.is_some_and(|last| number >= last);
        if short || past_last {
            self.done = true;
            if short && !past_last && self.last.is_some() {
                self.inconsistency = Some(format!(
                    "page {number} of {} had {n} rows: logs were deleted while they were read",
                    self.last.unwrap_or(0)
                ));
            } else if let Some(total) = self.total {
                let expected = total.saturating_sub(u64::from(self.first_page - 1) * u64::from(PER_PAGE));
                if self.read != expected {
                    self.inconsistency = Some(format!(
                        "the logs changed while they were read ({expected} rows expected, {} read)",
                        self.read
                    ));
                }
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The page a later run would continue from.
    pub fn next_page(&self) -> u32 {
        self.next
    }

    /// Rows read so far in this run.
    pub fn rows_read(&self) -> u64 {
        self.read
    }

    pub fn pages_read(&self) -> u32 {
        self.pages
    }

    /// The window's row count, when the API said.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    pub fn inconsistency(&self) -> Option<&str> {
        self.inconsistency.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::logs::{LogEntry, PageInfo};

    fn page(rows: usize, total: Option<u64>) -> LogPage {
        let entry = LogEntry {
            id: String::new(),
            created_ms: 0,
            provider: "p".into(),
            model: "m".into(),
            duration_ms: None,
            success: true,
            cached: false,
            status: Some(200),
            tokens_in: None,
            tokens_out: None,
            cost: None,
            agent: None,
            repo: None,
            attempt: None,
            from_worker: false,
        };
        LogPage { entries: vec![entry; rows], info: PageInfo { total_count: total, ..PageInfo::default() } }
    }

    /// Reads `total` rows served 50 at a time; returns the pages asked for.
    fn read_all(total: u64, parallel: u32) -> (Vec<u32>, Pager) {
        let mut pager = Pager::new();
        let mut asked = Vec::new();
        loop {
            let batch = pager.next_pages(parallel);
            if batch.is_empty() {
                break;
            }
            for n in batch {
                asked.push(n);
                let before = u64::from(n - 1) * 50;
                let rows = total.saturating_sub(before).min(50) as usize;
                pager.accept(n, &page(rows, Some(total)));
            }
        }
        (asked, pager)
    }

    #[test]
    fn stops_exactly_at_the_end() {
        for (total, pages) in [(0u64, 1u32), (1, 1), (49, 1), (50, 1), (51, 2), (100, 2), (10_000, 200), (10_001, 201)]
        {
            for parallel in [1, 4, 6] {
                let (asked, pager) = read_all(total, parallel);
                assert_eq!(asked, (1..=pages).collect::<Vec<_>>(), "total {total} parallel {parallel}");
                assert!(pager.is_done());
                assert_eq!(pager.rows_read(), total);
                assert_eq!(pager.inconsistency(), None);
            }
        }
    }

    #[test]
    fn batches_after_the_count_is_known() {
        let mut pager = Pager::new();
        assert_eq!(pager.next_pages(6), vec![1]);
        pager.accept(1, &page(50, Some(400)));
        assert_eq!(pager.next_pages(6), vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(pager.next_pages(3), vec![2, 3, 4]);
    }

    #[test]
    fn without_a_count_a_short_page_ends_it() {
        let mut pager = Pager::new();
        pager.accept(1, &page(50, None));
        assert_eq!(pager.next_pages(6), vec![2]);
        pager.accept(2, &page(50, None));
        pager.accept(3, &page(0, None));
        assert!(pager.is_done());
        assert_eq!(pager.rows_read(), 100);
    }

    #[test]
    fn shrinking_logs_are_noticed() {
        let mut pager = Pager::new();
        pager.accept(1, &page(50, Some(150)));
        pager.accept(2, &page(20, Some(120)));
        assert!(pager.is_done());
        assert!(pager.inconsistency().unwrap().contains("deleted"));
    }

    #[test]
    fn resumes_where_it_stopped() {
        let mut pager = Pager::resume_at(3);
        assert_eq!(pager.next_pages(6), vec![3]);
        pager.accept(3, &page(50, Some(170)));
        assert_eq!(pager.next_pages(6), vec![4]);
        pager.accept(4, &page(20, Some(170)));
        assert!(pager.is_done());
        assert_eq!(pager.inconsistency(), None);
        assert_eq!(pager.next_page(), 5);
    }

    #[test]
    fn retry_policy() {
        let limited = |s| LogsFailure::RateLimited { retry_after_s: s };
        assert_eq!(retry_delay_ms(&limited(Some(2)), 0), Some(2000));
        assert_eq!(retry_delay_ms(&limited(None), 1), Some(1000));
        assert_eq!(retry_delay_ms(&limited(Some(2)), MAX_RETRIES), None);
        assert_eq!(retry_delay_ms(&limited(Some(120)), 0), None, "a long wait ends the read");
        let server = LogsFailure::Server { status: 500, message: String::new() };
        assert_eq!(retry_delay_ms(&server, 0), Some(250));
        assert_eq!(retry_delay_ms(&server, 1), Some(500));
        assert_eq!(retry_delay_ms(&LogsFailure::Malformed("x".into()), 0), None);
        assert_eq!(retry_delay_ms(&LogsFailure::Unauthorized { status: 401, message: String::new() }, 0), None);
    }
}
