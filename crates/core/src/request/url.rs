//! The query string of a request's URL, read from the URL string the runtime gives
//! (`Request.url`, already serialized by the WHATWG URL parser) without parsing it again.
//!
//! The shell used to call workers-rs' `Request::url()`, which parses with the `url` crate: it
//! brought `url`, `idna` and ICU's normalisation tables into the wasm (78 KB of its 507 KB
//! gzipped) only to read the query. A serialized URL needs no parser for that: the path never
//! holds a raw `?` or `#` (they are percent-encoded), nor do the scheme, the user info or the
//! host, so the query is what lies between the first `?` and the first `#` after it.

/// The query of a serialized URL, without its `?`: `None` when there is no `?`, `Some("")` for
/// a bare `?` (as `url::Url::query` answers), never the fragment.
pub fn query(url: &str) -> Option<&str> {
    let before_fragment = url.split_once('#').map_or(url, |(head, _)| head);
    before_fragment.split_once('?').map(|(_, query)| query)
}

#[cfg(test)]
mod tests {
    use super::query;

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
