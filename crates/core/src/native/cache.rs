//! Caching of native calls: off unless the caller asks for it.
//!
//! A gateway-wide default TTL (the dashboard's, or `agw setup`'s) must not silently serve a
//! provider SDK a stored answer, so a native call always says what it wants: the caller's own
//! `cf-aig-cache-ttl` / `cf-aig-skip-cache` / `cf-aig-cache-key` (checked) when it sends them,
//! else `cf-aig-skip-cache: true` — the same "always said out loud" rule as the unified route.

/// The caching headers to send AI Gateway, from the caller's (`header(name)` reads one).
pub fn headers(header: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(ttl) = header("cf-aig-cache-ttl").map(|v| v.trim().to_owned()) {
        if !ttl.is_empty() && ttl.len() <= 8 && ttl.bytes().all(|b| b.is_ascii_digit()) {
            out.push(("cf-aig-cache-ttl", ttl));
        }
    }
    if let Some(skip) = header("cf-aig-skip-cache").map(|v| v.trim().to_ascii_lowercase()) {
        if skip == "true" || skip == "false" {
            out.push(("cf-aig-skip-cache", skip));
        }
    }
    if out.is_empty() {
        out.push(("cf-aig-skip-cache", "true".to_owned()));
    }
    if let Some(key) = header("cf-aig-cache-key") {
        if (1..=256).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
            out.push(("cf-aig-cache-key", key));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Vec<(&'static str, String)> {
        headers(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn off_unless_asked() {
        assert_eq!(from(&[]), vec![("cf-aig-skip-cache", "true".to_owned())]);
        assert_eq!(from(&[("cf-aig-cache-ttl", "3600")]), vec![("cf-aig-cache-ttl", "3600".to_owned())]);
        assert_eq!(from(&[("cf-aig-skip-cache", "FALSE")]), vec![("cf-aig-skip-cache", "false".to_owned())]);
        assert_eq!(
            from(&[("cf-aig-cache-ttl", "60"), ("cf-aig-cache-key", "repo@sha")]),
            vec![("cf-aig-cache-ttl", "60".to_owned()), ("cf-aig-cache-key", "repo@sha".to_owned())]
        );
    }

    #[test]
    fn unusable_values_are_dropped() {
        assert_eq!(
            from(&[("cf-aig-cache-ttl", "1h"), ("cf-aig-skip-cache", "yes")]),
            vec![("cf-aig-skip-cache", "true".to_owned())]
        );
        let long = "k".repeat(257);
        assert_eq!(from(&[("cf-aig-cache-key", &long)]).len(), 1);
        assert_eq!(from(&[("cf-aig-cache-key", "a b")]).len(), 1);
    }
}
