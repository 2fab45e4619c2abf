//! Whether an answer may come from AI Gateway's cache, and under which key.
//!
//! Caching is decided per route and always said out loud: a route without a cache policy sends
//! `cf-aig-skip-cache: true`, so a gateway-wide default TTL set in the dashboard can never serve
//! a pull-request review from an old commit. A caller can opt out (`cf-aig-skip-cache: true` or
//! `Cache-Control: no-cache`/`no-store`) and can *scope* entries (`x-gateway-cache-scope`, e.g.
//! `owner/repo@<head sha>`): the scope goes into the cache key, so a new commit never meets an
//! old entry. Streams are not cached (AI Gateway does not cache them by default).

use crate::config::{CachePolicy, ModelId};
use crate::digest::{hex, sha256_of};
use crate::error::{ErrorKind, GatewayError};

/// Whether AI Gateway answered from its cache, by its `cf-aig-cache-status` header (`HIT`, in
/// any case): then the provider billed nothing, however the answer ended.
pub fn is_hit(cache_status: Option<&str>) -> bool {
    cache_status.is_some_and(|s| s.eq_ignore_ascii_case("HIT"))
}

/// What the caller said about caching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallerCache<'a> {
    pub skip: bool,
    pub scope: Option<&'a str>,
}

impl<'a> CallerCache<'a> {
    /// Reads `cf-aig-skip-cache`, `Cache-Control` and `x-gateway-cache-scope`.
    pub fn from_headers(
        skip_cache: Option<&str>,
        cache_control: Option<&str>,
        scope: Option<&'a str>,
    ) -> Result<CallerCache<'a>, GatewayError> {
        let skip_header = skip_cache.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let no_cache = cache_control.is_some_and(|v| {
            v.split(',').map(|d| d.trim().to_ascii_lowercase()).any(|d| d == "no-cache" || d == "no-store")
        });
        let scope = scope.map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = scope {
            if s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    "Header `x-gateway-cache-scope` must be 1-256 visible ASCII characters (e.g. owner/repo@sha).",
                ));
            }
        }
        Ok(CallerCache { skip: skip_header || no_cache, scope })
    }
}

/// The cache headers for one attempt.
pub fn headers(
    policy: Option<CachePolicy>,
    caller: CallerCache,
    stream: bool,
    target: &ModelId,
    upstream_body: &[u8],
) -> Vec<(&'static str, String)> {
    let skip = || vec![("cf-aig-skip-cache", String::from("true"))];
    let Some(policy) = policy else { return skip() };
    if stream || caller.skip || (policy.require_scope && caller.scope.is_none()) {
        return skip();
    }
    let mut out = vec![("cf-aig-cache-ttl", policy.ttl_seconds.to_string())];
    if let Some(scope) = caller.scope {
        // A custom key replaces AI Gateway's own key entirely, so it must cover everything the
        // answer depends on: the scope, the target, and the exact body sent.
        let key = sha256_of(&[scope.as_bytes(), target.id.as_bytes(), upstream_body]);
        out.push(("cf-aig-cache-key", hex(&key)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> ModelId {
        ModelId::parse("google-ai-studio/gemini-2.5-flash").unwrap()
    }
    const TTL: Option<CachePolicy> = Some(CachePolicy { ttl_seconds: 3600, require_scope: false });
    const SCOPED: Option<CachePolicy> = Some(CachePolicy { ttl_seconds: 600, require_scope: true });

    fn names(h: &[(&str, String)]) -> Vec<String> {
        h.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn routes_without_policy_skip_the_cache_explicitly() {
        assert_eq!(names(&headers(None, CallerCache::default(), false, &t(), b"{}")), ["cf-aig-skip-cache=true"]);
    }

    #[test]
    fn cacheable_requests_get_the_ttl() {
        assert_eq!(names(&headers(TTL, CallerCache::default(), false, &t(), b"{}")), ["cf-aig-cache-ttl=3600"]);
    }

    #[test]
    fn streams_and_opt_outs_skip() {
        assert_eq!(names(&headers(TTL, CallerCache::default(), true, &t(), b"{}")), ["cf-aig-skip-cache=true"]);
        let opt_out = CallerCache::from_headers(None, Some("max-age=0, No-Cache"), None).unwrap();
        assert_eq!(names(&headers(TTL, opt_out, false, &t(), b"{}")), ["cf-aig-skip-cache=true"]);
        let opt_out = CallerCache::from_headers(Some("TRUE"), None, None).unwrap();
        assert!(opt_out.skip);
    }

    #[test]
    fn scoped_routes_need_a_scope_and_key_on_it() {
        assert_eq!(names(&headers(SCOPED, CallerCache::default(), false, &t(), b"{}")), ["cf-aig-skip-cache=true"]);
        let a = headers(SCOPED, CallerCache { skip: false, scope: Some("o/r@aaa") }, false, &t(), b"{}");
        let b = headers(SCOPED, CallerCache { skip: false, scope: Some("o/r@bbb") }, false, &t(), b"{}");
        let a2 = headers(SCOPED, CallerCache { skip: false, scope: Some("o/r@aaa") }, false, &t(), b"{}");
        let other_body = headers(SCOPED, CallerCache { skip: false, scope: Some("o/r@aaa") }, false, &t(), b"{ }");
        assert_eq!(a[0], ("cf-aig-cache-ttl", "600".to_string()));
        assert_eq!(a[1].0, "cf-aig-cache-key");
        assert_eq!(a[1].1.len(), 64);
        assert_eq!(a, a2, "same scope, target and body: same key");
        assert_ne!(a[1], b[1], "a new commit is a new key");
        assert_ne!(a[1], other_body[1], "a different request is a different key");
    }

    #[test]
    fn scope_is_validated() {
        assert!(CallerCache::from_headers(None, None, Some("o/r@sha with space")).is_err());
        assert!(CallerCache::from_headers(None, None, Some(&"x".repeat(300))).is_err());
        assert_eq!(CallerCache::from_headers(None, None, Some(" ")).unwrap().scope, None);
    }
}
