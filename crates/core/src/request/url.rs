//! The path and the query string of a request's URL, read from the URL string the runtime gives
//! (`Request.url`, already serialized by the WHATWG URL parser) without parsing it again.
//!
//! The shell used to call workers-rs' `Request::url()`, which parses with the `url` crate: it
//! brought `url`, `idna` and ICU's normalisation tables into the wasm (78 KB of its 507 KB
//! gzipped) only to read the query. A serialized URL needs no parser for that: the path never
//! holds a raw `?` or `#` (they are percent-encoded), nor do the scheme, the user info or the
//! host, so the query is what lies between the first `?` and the first `#` after it.

/// The path of a serialized URL, without its query or fragment: what follows the authority, up
/// to the first `?` or `#`. A special scheme's serialized URL always has a path (at least `/`),
/// and nothing before it holds a raw `/` (the user info percent-encodes it); `/` when the
/// URL has no authority or no path, as for a path on its own.
pub fn path(url: &str) -> &str {
    let rest = match url.split_once("://") {
        Some((_, after_scheme)) => match after_scheme.find('/') {
            Some(start) => &after_scheme[start..],
            None => return "/",
        },
        None if url.starts_with('/') => url,
        None => return "/",
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// The query of a serialized URL, without its `?`: `None` when there is no `?`, `Some("")` for
/// a bare `?` (as `url::Url::query` answers), never the fragment.
pub fn query(url: &str) -> Option<&str> {
    let before_fragment = url.split_once('#').map_or(url, |(head, _)| head);
    before_fragment.split_once('?').map(|(_, query)| query)
}

#[cfg(test)]
mod tests {
    use super::{path, query};

    #[test]
    fn reads_the_path_without_query_or_fragment() {
        let cases = [
            ("https://gw.example/v1/chat/completions", "/v1/chat/completions"),
            ("https://gw.example/", "/"),
            ("https://gw.example", "/"),
            ("http://127.0.0.1:8787/limits?provider=gemini", "/limits"),
            ("https://gw.example/a#frag?not=query", "/a"),
            (
                "https://gw.example/v1beta/models/x:streamGenerateContent?alt=sse",
                "/v1beta/models/x:streamGenerateContent",
            ),
            ("https://gw.example/%3Fnot-a-query/x", "/%3Fnot-a-query/x"),
            ("https://user:p%2Fw@gw.example/admin/gateways", "/admin/gateways"),
            ("/health?x", "/health"),
            ("", "/"),
        ];
        for (url, expected) in cases {
            assert_eq!(path(url), expected, "{url}");
        }
    }

    #[test]
    fn reads_the_query_as_the_url_crate_would() {
        let cases = [
            ("https://gw.example/analytics", None),
            ("https://gw.example/analytics?", Some("")),
            ("https://gw.example/analytics?format=csv&days=7", Some("format=csv&days=7")),
            ("https://gw.example/a?b=1#frag", Some("b=1")),
            ("https://gw.example/a#frag?not=query", None),
            ("https://gw.example/a?b=%3F?c#x#y", Some("b=%3F?c")),
            ("https://gw.example/v1beta/models/x:generateContent?alt=sse", Some("alt=sse")),
            ("http://127.0.0.1:8787/admin/gateways?page=2", Some("page=2")),
            ("https://gw.example/%3Fnot-a-query", None),
        ];
        for (url, expected) in cases {
            assert_eq!(query(url), expected, "{url}");
        }
    }
}
