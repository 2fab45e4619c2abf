//! The analytics knobs (vars), read once with the rest of the settings. `ANALYTICS_TOKEN` itself
//! is a secret and lives in [`crate::config::Settings`] with the others.

use crate::money::pricing::PerToken;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsSettings {
    /// Flag a provider/model whose AI Gateway cost differs from ours by more than this, in
    /// hundredths of a percent (`ANALYTICS_DRIFT_PERCENT`, default 5).
    pub drift_threshold_bp: u64,
    /// How long a computed view is reused, in seconds (`ANALYTICS_CACHE_TTL`, default 60; 0 off).
    pub cache_ttl_s: u32,
    /// How many past days the scheduled rollup keeps (`ANALYTICS_ROLLUP_DAYS`, default 35).
    pub rollup_days: u32,
    /// Most log pages one scheduled run reads (`ANALYTICS_ROLLUP_MAX_PAGES`, default 800): a
    /// Worker invocation has a subrequest limit (1,000 on the paid plan); what is left is done by
    /// the next run.
    pub rollup_max_pages: u32,
    /// Pages asked for at once (`ANALYTICS_PARALLEL_PAGES`, default 6: the Workers limit of
    /// simultaneous open connections).
    pub parallel_pages: u32,
    /// Most pages of AI Gateway's logs the ledger's cross-check reads per view
    /// (`ANALYTICS_CROSS_CHECK_PAGES`, default 20: 1,000 logs, the newest of the range; 0: off).
    pub cross_check_pages: u32,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            drift_threshold_bp: 500,
            cache_ttl_s: 60,
            rollup_days: 35,
            rollup_max_pages: 800,
            parallel_pages: 6,
            cross_check_pages: 20,
        }
    }
}

impl AnalyticsSettings {
    /// Reads the vars through `lookup`; problems are returned by name, defaults used instead.
    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> (AnalyticsSettings, Vec<String>) {
        let mut s = AnalyticsSettings::default();
        let mut invalid = Vec::new();
        let text = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if let Some(v) = text("ANALYTICS_DRIFT_PERCENT") {
            // A percentage with up to two decimals, parsed exactly (PerToken's parser has six).
            match PerToken::parse_per_million(&v).filter(|p| p.0 % 10_000 == 0 && p.0 <= 100_000_000) {
                Some(p) => s.drift_threshold_bp = p.0 / 10_000,
                None => invalid
                    .push("ANALYTICS_DRIFT_PERCENT must be a percentage from 0 to 100 (two decimals at most)".into()),
            }
        }
        let mut number = |name: &str, min: u32, max: u32, slot: &mut u32| {
            if let Some(v) = text(name) {
                match v.parse::<u32>() {
                    Ok(n) if (min..=max).contains(&n) => *slot = n,
                    _ => invalid.push(format!("{name} must be a whole number from {min} to {max}")),
                }
            }
        };
        number("ANALYTICS_CACHE_TTL", 0, 3600, &mut s.cache_ttl_s);
        number("ANALYTICS_ROLLUP_DAYS", 1, 400, &mut s.rollup_days);
        number("ANALYTICS_ROLLUP_MAX_PAGES", 1, 100_000, &mut s.rollup_max_pages);
        number("ANALYTICS_PARALLEL_PAGES", 1, 6, &mut s.parallel_pages);
        number("ANALYTICS_CROSS_CHECK_PAGES", 0, 200, &mut s.cross_check_pages);
        (s, invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (AnalyticsSettings, Vec<String>) {
        AnalyticsSettings::read(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(read(&[]), (AnalyticsSettings::default(), vec![]));
        let (s, bad) = read(&[
            ("ANALYTICS_DRIFT_PERCENT", "2.5"),
            ("ANALYTICS_CACHE_TTL", "0"),
            ("ANALYTICS_ROLLUP_MAX_PAGES", "3"),
            ("ANALYTICS_CROSS_CHECK_PAGES", "0"),
        ]);
        assert!(bad.is_empty());
        assert_eq!((s.drift_threshold_bp, s.cache_ttl_s, s.rollup_max_pages), (250, 0, 3));
        assert_eq!(s.cross_check_pages, 0, "0 turns the ledger's cross-check off");
        assert_eq!(read(&[("ANALYTICS_CROSS_CHECK_PAGES", "201")]).1.len(), 1);
    }

    #[test]
    fn bad_values_are_named() {
        let (s, bad) = read(&[
            ("ANALYTICS_DRIFT_PERCENT", "2.555"),
            ("ANALYTICS_ROLLUP_DAYS", "0"),
            ("ANALYTICS_PARALLEL_PAGES", "9"),
        ]);
        assert_eq!(s, AnalyticsSettings::default());
        assert_eq!(bad.len(), 3);
        assert!(bad[0].contains("ANALYTICS_DRIFT_PERCENT"));
    }
}
