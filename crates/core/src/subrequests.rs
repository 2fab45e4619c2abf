//! A request's subrequests, planned against the platform's limit.
//!
//! Every `fetch`, D1 query, Durable Object call and Cache API call a Worker makes while serving a
//! request counts towards a limit per request: 50 on the Workers Free plan (`SUBREQUEST_LIMIT`,
//! default [`DEFAULT_LIMIT`]). Past it the runtime throws, so a back-office view that simply
//! read everything it wanted (a log page per 50 logs, a limiter per provider and scope) would
//! fail half-way on a free account. The views instead take their reads from a [`Subrequests`]
//! budget in order of what matters most, and what did not fit is left out and said (a warning
//! in the answer, and `x-analytics-subrequests: used/limit` or `x-limits-subrequests`).
//!
//! The order, for `/analytics`: the result cache (a read, and a write for a complete view), the
//! view's own reads (the ledger's schema check and grouped query; or the rollups), then the
//! dashboard's budgets panel (the ledger's callers, every provider's limiter, then the limiters
//! of the scopes used today, in the listed order), and last the reads whose size is a choice:
//! the ledger's cross-check with AI Gateway's logs (its attempts query and up to
//! `ANALYTICS_CROSS_CHECK_PAGES` pages, retries included), or an `aig` view's log pages. For
//! `/limits`: the ledger's callers, then the limiters as for the panel.

/// The Workers Free plan's subrequests per request.
pub const DEFAULT_LIMIT: u32 = 50;
/// The least `SUBREQUEST_LIMIT` accepted: room for a view's own reads and a few limiters.
pub const MIN_LIMIT: u32 = 10;
/// The most accepted (the Workers Paid plan's limit per request).
pub const MAX_LIMIT: u32 = 10_000;

/// A request's subrequests: at most `limit`, counted as they are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subrequests {
    limit: u32,
    used: u32,
    left_out: Vec<String>,
}

impl Subrequests {
    pub fn new(limit: u32) -> Subrequests {
        Subrequests { limit, used: 0, left_out: Vec::new() }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn used(&self) -> u32 {
        self.used
    }

    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    /// Takes up to `wanted`; how many were granted.
    pub fn take(&mut self, wanted: u32) -> u32 {
        let granted = wanted.min(self.remaining());
        self.used += granted;
        granted
    }

    /// Takes exactly `n`, or nothing (false).
    pub fn take_all(&mut self, n: u32) -> bool {
        if n > self.remaining() {
            return false;
        }
        self.used += n;
        true
    }

    /// Gives back what was taken but not spent.
    pub fn give_back(&mut self, n: u32) {
        self.used = self.used.saturating_sub(n);
    }

    /// Says what was left out for the limit.
    pub fn leave_out(&mut self, what: String) {
        self.left_out.push(what);
    }

    /// What was left out since the last call, each as a warning for the part of the answer
    /// that lacks it.
    pub fn drain_left_out(&mut self) -> Vec<String> {
        let limit = self.limit;
        self.left_out
            .drain(..)
            .map(|what| format!("{what}: the subrequest limit ({limit}, SUBREQUEST_LIMIT) was reached"))
            .collect()
    }

    /// `48/50`, the value of the view's subrequest header.
    pub fn header(&self) -> String {
        format!("{}/{}", self.used, self.limit)
    }
}

/// A view's own reads, taken before anything optional (after the result cache's read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewReads {
    /// The result cache is used: its write, kept for a complete view.
    pub cache_write: bool,
    /// The ledger's table has not been seen by this isolate yet: one D1 query to check it.
    pub schema_check: bool,
    /// A ledger view: its grouped query (D1).
    pub ledger_query: bool,
    /// An `aig` view over settled days: one call to the rollups' Durable Object.
    pub rollups: bool,
}

impl ViewReads {
    pub fn count(&self) -> u32 {
        u32::from(self.cache_write)
            + u32::from(self.schema_check)
            + u32::from(self.ledger_query)
            + u32::from(self.rollups)
    }
}

/// The ledger's cross-check within what is left: one attempts query (D1), page 1 of the logs,
/// and more pages up to the configured number, each retry a request of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossCheckPlan {
    /// Most pages of logs to read (page 1 included).
    pub pages: u32,
    /// Requests the log pages may make, retries included.
    pub log_requests: u32,
    /// Fewer pages than configured could be planned.
    pub cut: bool,
}

/// Retries a view's log reads may make beyond one request per page, when there is room.
pub const RETRY_ROOM: u32 = 4;

/// Takes the cross-check's share of `budget`: `None` when not even page 1 and the attempts
/// query fit (then it is left out).
pub fn plan_cross_check(budget: &mut Subrequests, configured_pages: u32) -> Option<CrossCheckPlan> {
    let granted = budget.take(configured_pages.saturating_add(1 + RETRY_ROOM));
    if granted < 2 {
        budget.give_back(granted);
        budget.leave_out("the cross-check with AI Gateway's logs did not run".to_owned());
        return None;
    }
    let log_requests = granted - 1;
    let pages = configured_pages.min(log_requests);
    Some(CrossCheckPlan { pages, log_requests, cut: pages < configured_pages })
}

impl CrossCheckPlan {
    /// What to say when the read stopped at the planned pages with logs left unread.
    pub fn note(&self, configured_pages: u32) -> String {
        format!("the cross-check read {} of up to {configured_pages} pages of AI Gateway's logs", self.pages)
    }
}

/// Takes everything left for an `aig` view's log pages (retries included): its logs are the view.
pub fn plan_log_reads(budget: &mut Subrequests) -> u32 {
    budget.take(u32::MAX)
}

/// What to say when an `aig` view's log reads stopped at the limit.
pub fn logs_cut_note(pages_read: u32, logs_read: u64, total: Option<u64>) -> String {
    let of = total.map_or_else(String::new, |t| format!(" of {t}"));
    format!("AI Gateway's logs were read for {pages_read} pages ({logs_read}{of} logs) and no further; the view is incomplete")
}

/// The limiters a listing asks within `budget`: every provider first (the gateway's own money),
/// then `scopes` limiters in the listed order, one call each, as many as fit. Returns how many
/// providers and how many scopes may be asked; what does not fit is left out and said.
pub fn plan_limiters(budget: &mut Subrequests, providers: usize, scopes: usize) -> (usize, usize) {
    let wanted = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let asked_providers = budget.take(wanted(providers)) as usize;
    let asked_scopes = budget.take(wanted(scopes)) as usize;
    if asked_providers < providers {
        budget.leave_out(format!("{} of {providers} providers' limiters were not read", providers - asked_providers));
    }
    if asked_scopes < scopes {
        budget.leave_out(format!(
            "{} of the {scopes} scopes used today are not shown (ask /limits for one with ?repository= or ?agent=)",
            scopes - asked_scopes
        ));
    }
    (asked_providers, asked_scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_never_pass_the_limit() {
        let mut b = Subrequests::new(10);
        assert_eq!(b.take(4), 4);
        assert!(!b.take_all(7) && b.used() == 4);
        assert!(b.take_all(6));
        assert_eq!((b.take(1), b.remaining(), b.header()), (0, 0, "10/10".to_owned()));
        b.give_back(3);
        assert_eq!(b.header(), "7/10");
        b.give_back(100);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_view_reads_its_own_first() {
        let all = ViewReads { cache_write: true, schema_check: true, ledger_query: true, rollups: false };
        assert_eq!(all.count(), 3);
        assert_eq!(
            ViewReads { cache_write: false, schema_check: false, ledger_query: false, rollups: true }.count(),
            1
        );
    }

    #[test]
    fn the_cross_check_takes_what_is_left_up_to_its_pages() {
        let mut b = Subrequests::new(50);
        b.take(10);
        let plan = plan_cross_check(&mut b, 20).unwrap();
        assert_eq!(plan, CrossCheckPlan { pages: 20, log_requests: 24, cut: false });
        assert_eq!(b.used(), 35);

        let mut b = Subrequests::new(50);
        b.take(40);
        let plan = plan_cross_check(&mut b, 20).unwrap();
        assert_eq!(plan, CrossCheckPlan { pages: 9, log_requests: 9, cut: true });
        assert_eq!(b.remaining(), 0);
        assert!(plan.note(20).contains("9 of up to 20 pages"));

        let mut b = Subrequests::new(50);
        b.take(49);
        assert_eq!(plan_cross_check(&mut b, 20), None);
        assert_eq!(b.used(), 49, "what could not be used is given back");
        let said = b.drain_left_out();
        assert_eq!(said.len(), 1);
        assert!(b.drain_left_out().is_empty(), "said once");
        assert!(said[0].contains("cross-check") && said[0].contains("limit (50, SUBREQUEST_LIMIT)"), "{said:?}");
    }

    #[test]
    fn limiters_providers_first_then_scopes_in_order() {
        let mut b = Subrequests::new(50);
        b.take(5);
        assert_eq!(plan_limiters(&mut b, 3, 10), (3, 10));
        assert!(b.drain_left_out().is_empty());
        assert_eq!(plan_limiters(&mut b, 3, 100), (3, 29));
        assert_eq!(b.remaining(), 0);
        let said = b.drain_left_out();
        assert!(said[0].contains("71 of the 100 scopes"), "{said:?}");
        let mut tiny = Subrequests::new(2);
        assert_eq!(plan_limiters(&mut tiny, 3, 1), (2, 0));
        assert_eq!(tiny.drain_left_out().len(), 2);
    }

    #[test]
    fn aig_logs_take_the_rest() {
        let mut b = Subrequests::new(50);
        b.take(7);
        assert_eq!(plan_log_reads(&mut b), 43);
        assert!(logs_cut_note(40, 2000, Some(9000)).contains("2000 of 9000 logs"));
    }
}
