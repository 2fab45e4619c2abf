//! `GET /analytics` parameters: the time range, the grouping, the format, and whether rollups and
//! the result cache may be used. Unknown or repeated parameters are refused (a typo such as
//! `group-by` must not silently give the default view).

use crate::analytics::cells::Dim;
use crate::analytics::logs::Window;
use crate::analytics::report::Source;
use crate::error::{ErrorKind, GatewayError};
use crate::percent;
use crate::time::{self, MS_PER_DAY};

/// The default range: the last 7 days.
pub const DEFAULT_DAYS: i64 = 7;
/// The longest range one request may ask for.
pub const MAX_RANGE_DAYS: i64 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsQuery {
    /// `source=ledger` (default): the Worker's own ledger; `source=aig`: AI Gateway's logs.
    pub source: Source,
    pub window: Window,
    pub group_by: Vec<Dim>,
    pub format: Format,
    /// `rollups=off` reads every log (a cold view; the benchmark's baseline).
    pub use_rollups: bool,
    /// `cache=off` skips the short-lived result cache.
    pub use_cache: bool,
}

const PARAMS: &[&str] = &["source", "from", "to", "group_by", "format", "rollups", "cache"];

fn invalid(message: String) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message)
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(60).collect()
}

/// An instant: RFC 3339, or a `YYYY-MM-DD` date (its midnight UTC; for `to`, the midnight that
/// ends it, so `to=2026-08-20` includes that day).
fn instant(name: &str, value: &str, end_of_day: bool) -> Result<i64, GatewayError> {
    if let Some(day) = time::parse_day(value) {
        return Ok((day + i64::from(end_of_day)) * MS_PER_DAY);
    }
    time::parse_rfc3339(value).ok_or_else(|| {
        invalid(format!(
            "`{name}` must be an RFC 3339 date-time (2026-08-20T09:00:00Z) or a date (2026-08-20), not {:?}.",
            printable(value)
        ))
    })
}

fn switch(name: &str, value: &str) -> Result<bool, GatewayError> {
    match value {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(invalid(format!("`{name}` must be `on` or `off`, not {:?}.", printable(other)))),
    }
}

/// The format a browser or a script wants when `format` is not given.
pub fn negotiate(accept: Option<&str>) -> Format {
    let accept = accept.unwrap_or("").to_ascii_lowercase();
    if accept.contains("text/html") {
        Format::Html
    } else if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Json
    }
}

/// Reads the query string (without `?`). `now_ms` sets the default range.
pub fn parse(query: &str, accept: Option<&str>, now_ms: i64) -> Result<AnalyticsQuery, GatewayError> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent::decode_query_component(raw_name).unwrap_or_default();
        let Some(&known) = PARAMS.iter().find(|p| **p == name) else {
            return Err(invalid(format!(
                "Unknown query parameter {:?}. Parameters: {}.",
                printable(&name),
                PARAMS.join(", ")
            )));
        };
        if seen.iter().any(|(n, _)| *n == known) {
            return Err(invalid(format!("Query parameter `{known}` is given twice.")));
        }
        let value = percent::decode_query_component(raw_value)
            .ok_or_else(|| invalid(format!("Query parameter `{known}` is not valid percent-encoded UTF-8.")))?;
        seen.push((known, value.trim().to_owned()));
    }
    let get = |name: &str| seen.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());

    // Default end: now, rounded up to the minute, so repeated views share a cache entry (no log
    // can be newer than now, so rounding up loses nothing).
    let to_ms = match get("to") {
        Some(v) => instant("to", v, true)?,
        None => now_ms.div_euclid(60_000) * 60_000 + if now_ms % 60_000 == 0 { 0 } else { 60_000 },
    };
    let from_ms = match get("from") {
        Some(v) => instant("from", v, false)?,
        None => to_ms - DEFAULT_DAYS * MS_PER_DAY,
    };
    if from_ms >= to_ms {
        return Err(invalid("`from` must be before `to`.".to_owned()));
    }
    if to_ms - from_ms > MAX_RANGE_DAYS * MS_PER_DAY {
        return Err(invalid(format!("The range may span at most {MAX_RANGE_DAYS} days.")));
    }

    let group_by = match get("group_by") {
        None => vec![Dim::Provider],
        Some(v) => {
            let mut dims = Vec::new();
            for part in v.split(',') {
                let dim = Dim::parse(part).ok_or_else(|| {
                    invalid(format!(
                        "`group_by` takes one or two of provider, model, agent, repository, day (comma-separated), not {:?}.",
                        printable(part)
                    ))
                })?;
                if dims.contains(&dim) {
                    return Err(invalid(format!("`group_by` names `{}` twice.", dim.name())));
                }
                dims.push(dim);
            }
            if dims.len() > 2 {
                return Err(invalid("`group_by` takes at most two dimensions (e.g. provider,day).".to_owned()));
            }
            dims
        }
    };
    let format = match get("format") {
        None => negotiate(accept),
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("html") => Format::Html,
        Some(other) => return Err(invalid(format!("`format` must be json, csv or html, not {:?}.", printable(other)))),
    };
    let source = match get("source") {
        None | Some("ledger") => Source::Ledger,
        Some("aig") => Source::Aig,
        Some(other) => return Err(invalid(format!("`source` must be ledger or aig, not {:?}.", printable(other)))),
    };
    Ok(AnalyticsQuery {
        source,
        window: Window { from_ms, to_ms },
        group_by,
        format,
        use_rollups: get("rollups").map(|v| switch("rollups", v)).transpose()?.unwrap_or(true),
        use_cache: get("cache").map(|v| switch("cache", v)).transpose()?.unwrap_or(true),
    })
}

impl AnalyticsQuery {
    /// What identifies the answer, for the result cache: the resolved range (not "now"), so a
    /// cached answer is never reused for another range.
    pub fn cache_key(&self, gateway: &str) -> String {
        let dims: Vec<&str> = self.group_by.iter().map(|d| d.name()).collect();
        format!(
            "gateway={gateway}&source={}&from={}&to={}&group_by={}&format={}&rollups={}",
            self.source.name(),
            self.window.from_ms,
            self.window.to_ms,
            dims.join(","),
            self.format.name(),
            if self.use_rollups { "on" } else { "off" }
        )
    }

    /// The query string that asks for this view again in another format (links on the page).
    pub fn link(&self, format: Format) -> String {
        let dims: Vec<&str> = self.group_by.iter().map(|d| d.name()).collect();
        format!(
            "?source={}&from={}&to={}&group_by={}&format={}",
            self.source.name(),
            time::format_ms(self.window.from_ms),
            time::format_ms(self.window.to_ms),
            dims.join(","),
            format.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_787_222_043_512; // 2026-08-20T10:34:03.512Z

    #[test]
    fn defaults() {
        let q = parse("", None, NOW).unwrap();
        assert_eq!(time::format_ms(q.window.to_ms), "2026-08-20T10:35:00.000Z");
        assert_eq!(q.window.to_ms - q.window.from_ms, 7 * MS_PER_DAY);
        assert_eq!(q.group_by, [Dim::Provider]);
        assert_eq!(q.format, Format::Json);
        assert!(q.use_rollups && q.use_cache);
        assert_eq!(q.source, Source::Ledger);
    }

    #[test]
    fn explicit_values() {
        let q = parse(
            "from=2026-08-01&to=2026-08-20T00%3A00%3A00Z&group_by=provider%2Cday&format=csv&rollups=off&cache=0",
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(time::format_ms(q.window.from_ms), "2026-08-01T00:00:00.000Z");
        assert_eq!(time::format_ms(q.window.to_ms), "2026-08-20T00:00:00.000Z");
        assert_eq!(q.group_by, [Dim::Provider, Dim::Day]);
        assert_eq!(q.format, Format::Csv);
        assert!(!q.use_rollups && !q.use_cache);
        // A date as `to` includes that day.
        let q = parse("from=2026-08-01&to=2026-08-01", None, NOW).unwrap();
        assert_eq!(q.window.to_ms - q.window.from_ms, MS_PER_DAY);
        assert_eq!(parse("group_by=repo", None, NOW).unwrap().group_by, [Dim::Repo]);
        assert_eq!(parse("source=aig", None, NOW).unwrap().source, Source::Aig);
        assert_eq!(parse("source=ledger", None, NOW).unwrap().source, Source::Ledger);
    }

    #[test]
    fn negotiation() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(parse("", Some(browser), NOW).unwrap().format, Format::Html);
        assert_eq!(parse("", Some("text/csv"), NOW).unwrap().format, Format::Csv);
        assert_eq!(parse("", Some("*/*"), NOW).unwrap().format, Format::Json);
        assert_eq!(parse("format=json", Some(browser), NOW).unwrap().format, Format::Json);
    }

    #[test]
    fn refusals_are_400_with_reasons() {
        for (q, needle) in [
            ("group-by=day", "Unknown query parameter"),
            ("from=yesterday", "RFC 3339"),
            ("from=2026-08-02&to=2026-08-01", "before"),
            ("from=2024-01-01&to=2026-01-01", "at most 400"),
            ("group_by=provider,day,model", "at most two"),
            ("group_by=day,day", "twice"),
            ("group_by=cost", "one or two of"),
            ("format=xml", "json, csv or html"),
            ("source=logs", "ledger or aig"),
            ("rollups=maybe", "on` or `off"),
            ("format=json&format=csv", "given twice"),
            ("from=%ZZ", "percent-encoded"),
        ] {
            let e = parse(q, None, NOW).unwrap_err();
            assert_eq!(e.status(), 400, "{q}");
            assert!(e.message.contains(needle), "{q}: {}", e.message);
        }
    }

    #[test]
    fn cache_key_names_the_resolved_range() {
        let a = parse("", None, NOW).unwrap();
        let b = parse("", None, NOW + 1_000).unwrap();
        assert_eq!(a.cache_key("gw"), b.cache_key("gw"), "same minute, same entry");
        let c = parse("", None, NOW + 60_000).unwrap();
        assert_ne!(a.cache_key("gw"), c.cache_key("gw"));
        assert_ne!(a.cache_key("gw"), a.cache_key("other"));
        assert!(a.link(Format::Csv).contains("format=csv"));
        let aig = parse("source=aig", None, NOW).unwrap();
        assert_ne!(a.cache_key("gw"), aig.cache_key("gw"));
        assert!(aig.link(Format::Json).starts_with("?source=aig&"));
    }
}
