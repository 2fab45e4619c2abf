//! Where every limiter stands today: each configured provider and each scope (repository,
//! owner, agent) whose callers spent today, with its limits. Gathered once by the shell (the
//! same for `GET /limits` and the dashboard's "Budgets today" panel), as plain data.

use serde::Serialize;

use crate::account::limits::{Policy, Snapshot};
use crate::account::scopes::Scope;
use crate::money::pricing::Usd;

/// A provider's limits and today's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderToday {
    pub provider: String,
    pub requests_per_minute: u32,
    pub daily_budget_usd: Usd,
    /// `None`: its limiter could not be read (the reason is among the warnings).
    #[serde(flatten)]
    pub today: Option<Snapshot>,
}

impl ProviderToday {
    pub fn new(provider: &str, limits: &Policy, today: Option<Snapshot>) -> ProviderToday {
        ProviderToday {
            provider: provider.to_owned(),
            requests_per_minute: limits.requests_per_minute,
            daily_budget_usd: limits.daily_budget,
            today,
        }
    }
}

/// One scope's limits and today's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeToday {
    /// `repository`, `owner` or `agent`.
    pub scope: &'static str,
    pub name: String,
    /// `null`: no rate limit of its own.
    pub requests_per_minute: Option<u32>,
    pub daily_budget_usd: Usd,
    /// `None`: its limiter could not be read (the reason is among the warnings).
    #[serde(flatten)]
    pub today: Option<Snapshot>,
}

impl ScopeToday {
    pub fn new(scope: &Scope, today: Option<Snapshot>) -> ScopeToday {
        let rpm = scope.policy.requests_per_minute;
        ScopeToday {
            scope: scope.kind.name(),
            name: scope.name.clone(),
            requests_per_minute: (rpm != u32::MAX).then_some(rpm),
            daily_budget_usd: scope.policy.daily_budget,
            today,
        }
    }
}

/// Every limiter's standing today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BudgetsToday {
    pub providers: Vec<ProviderToday>,
    pub scopes: Vec<ScopeToday>,
    /// What could not be read (the ledger's callers, a limiter, the configuration).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// When it was read (ms since the epoch).
    #[serde(skip)]
    pub read_at_ms: i64,
}

impl BudgetsToday {
    /// Whether some limiter could not be read.
    pub fn has_unread_limiter(&self) -> bool {
        self.providers.iter().any(|p| p.today.is_none()) || self.scopes.iter().any(|s| s.today.is_none())
    }
}

/// `spent` as a share of `budget`, in basis points, rounded down (so `79.99%` never shows as,
/// or is highlighted as, 80%); `None` without a budget.
pub fn used_bp(spent: Usd, budget: Usd) -> Option<u64> {
    if budget == Usd::ZERO {
        return None;
    }
    let bp = u128::from(spent.0) * 10_000 / u128::from(budget.0);
    Some(u64::try_from(bp).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_down_exactly() {
        let usd = |s: &str| Usd::parse_dollars(s).unwrap();
        assert_eq!(used_bp(usd("7.999999999999"), usd("10")), Some(7_999));
        assert_eq!(used_bp(usd("8"), usd("10")), Some(8_000));
        assert_eq!(used_bp(usd("10.5"), usd("10")), Some(10_500));
        assert_eq!(used_bp(Usd::ZERO, usd("10")), Some(0));
        assert_eq!(used_bp(usd("1"), Usd::ZERO), None);
        assert_eq!(used_bp(Usd(u64::MAX), Usd(1)), Some(u64::MAX));
    }

    #[test]
    fn serialises_as_limits_did() {
        let snap = Snapshot {
            day: "2026-12-02".into(),
            spent_usd: Usd::parse_dollars("0.000123").unwrap(),
            requests_last_minute: 2,
            ..Snapshot::default()
        };
        let row = ScopeToday {
            scope: "repository",
            name: "a/b".into(),
            requests_per_minute: None,
            daily_budget_usd: Usd::from_dollars(2),
            today: Some(snap),
        };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"scope":"repository","name":"a/b","requests_per_minute":null,"daily_budget_usd":2,"day":"2026-12-02","spent_usd":0.000123,"reserved_usd":0,"outstanding_reservations":0,"requests_last_minute":2,"leased_usd":0,"leased_requests":0,"leases":0,"admitted_under_leases":0,"isolate_died_usd":0,"isolate_died_requests":0}"#
        );
    }
}
