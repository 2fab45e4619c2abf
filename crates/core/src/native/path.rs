//! The path of a native call: checked so that nothing but the configured gateway is ever reached.
//!
//! The upstream URL is always `{AI_GATEWAY_URL}/{account}/{gateway}/{provider}/{rest}`: the host
//! comes from configuration, the provider from an allow-list, and `rest` is appended only after
//! it passed every check below. A path that would need rewriting to be safe is refused rather than
//! rewritten (a rewrite is a second parser whose idea of the path may differ from the gateway's):
//!
//! * dot segments (`.`, `..`), empty segments (`//`, a trailing `/`);
//! * percent-escapes of `.`, `/`, `\`, `%` or `@`, of control or non-ASCII bytes, or malformed ones;
//! * `@` (userinfo), a scheme (`http:` as the first segment), backslashes, control characters,
//!   spaces and anything else outside a small alphabet.
//!
//! The one `@` accepted is Workers AI's model namespace, a first segment of exactly `@cf` or `@hf`
//! (`/workers-ai/@cf/meta/llama-3.1-8b-instruct`).
//!
//! The query string is forwarded (Gemini's `alt=sse`, Azure's `api-version`) after the same kind
//! of check, without any `key`/`api-key` parameter: a credential never travels upstream in a URL.

use crate::config::Settings;
use crate::error::{ErrorKind, GatewayError};
use crate::percent;
use crate::provider::Provider;

/// Longest `rest` accepted (real provider paths are well under 300 bytes).
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest query string accepted.
pub const MAX_QUERY_BYTES: usize = 1024;

/// Query parameters that carry credentials; never forwarded.
const CREDENTIAL_PARAMS: &[&str] = &["key", "api-key", "api_key"];

/// A native call's path, checked: safe to append to the gateway's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativePath {
    pub provider: Provider,
    /// The path after `/{provider}/`, exactly as received (it passed every check).
    pub rest: String,
    /// The query string to forward (credential parameters removed), if any is left.
    pub query: Option<String>,
}

impl NativePath {
    /// Checks a request's path (`/{provider}/{rest}`) and raw query string.
    pub fn parse(path: &str, query: Option<&str>) -> Result<NativePath, GatewayError> {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let (slug, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let provider = Provider::from_slug(slug).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::NotFound,
                format!(
                    "No native route for `{}`. Native routes: {}.",
                    printable(slug),
                    crate::provider::SLUGS.map(|s| format!("/{s}/…")).join(", ")
                ),
            )
        })?;
        if rest.is_empty() {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                format!("Name the provider's API path after /{slug}/ (for example /{slug}/{}).", example(provider)),
            ));
        }
        check_rest(provider, rest).map_err(|why| refused(&format!("/{slug}/{}", printable(rest)), why))?;
        let query = match query {
            Some(q) if !q.is_empty() => forwardable_query(q).map_err(|why| refused("the query string", why))?,
            _ => None,
        };
        Ok(NativePath { provider, rest: rest.to_owned(), query })
    }

    /// The AI Gateway URL for this call: the configured base, account and gateway, then the path.
    pub fn upstream_url(&self, settings: &Settings) -> Result<String, GatewayError> {
        let (Some(account), Some(gateway)) = (&settings.account_id, &settings.gateway_id) else {
            return Err(GatewayError::new(
                ErrorKind::Configuration,
                "CF_ACCOUNT_ID and AI_GATEWAY_ID must be set to reach AI Gateway.",
            ));
        };
        let mut url = format!("{}/{account}/{gateway}/{}/{}", settings.gateway_url, self.provider.slug(), self.rest);
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        Ok(url)
    }

    /// The path's segments, percent-escapes decoded (they are all safe ones, see the module doc).
    pub fn segments(&self) -> impl Iterator<Item = String> + '_ {
        self.rest.split('/').map(percent::decode_path_segment)
    }

    /// The value of query parameter `name`, if forwarded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

fn example(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "chat/completions",
        Provider::Anthropic => "v1/messages",
        Provider::GoogleAiStudio => "v1beta/models/gemini-2.5-flash:generateContent",
        Provider::WorkersAi => "v1/chat/completions",
        Provider::AzureOpenAi => "{resource}/{deployment}/chat/completions?api-version=2024-10-21",
        Provider::AwsBedrock => "bedrock-runtime/{region}/model/{model}/invoke",
    }
}

fn refused(what: &str, why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::InvalidRequest,
        format!("The path {what} is refused: {why}. Native routes forward only plain API paths to AI Gateway."),
    )
}

/// Characters allowed literally in a path segment.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:+,=".contains(&b)
}

/// Characters a percent-escape may stand for: plain ones, but never `.` (an encoded dot segment).
fn plain_escaped(b: u8) -> bool {
    plain(b) && b != b'.'
}

fn check_rest(provider: Provider, rest: &str) -> Result<(), &'static str> {
    if rest.len() > MAX_PATH_BYTES {
        return Err("it is too long");
    }
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            return Err("it has an empty segment (`//` or a trailing `/`)");
        }
        if segment == "." || segment == ".." {
            return Err("it has a dot segment (`.` or `..`)");
        }
        if i == 0 && provider == Provider::WorkersAi && (segment == "@cf" || segment == "@hf") {
            continue;
        }
        if i == 0 && segment.contains(':') {
            return Err("it starts with a scheme (`name:`)");
        }
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), &'static str> {
    let b = segment.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let decoded =
                    match (b.get(i + 1).and_then(percent::hex_digit), b.get(i + 2).and_then(percent::hex_digit)) {
                        (Some(h), Some(l)) => h * 16 + l,
                        _ => return Err("it has a malformed percent-escape"),
                    };
                if !plain_escaped(decoded) {
                    return Err(match decoded {
                        b'.' | b'/' | b'\\' | b'%' | b'@' => "it has an encoded `.`, `/`, `\\`, `%` or `@`",
                        0..=0x1f | 0x7f => "it has an encoded control character",
                        _ => "it has an encoded character outside the allowed set",
                    });
                }
                i += 3;
                continue;
            }
            b'@' => return Err("it has an `@`"),
            b'\\' => return Err("it has a backslash"),
            c if c.is_ascii_control() => return Err("it has a control character"),
            c if !plain(c) => return Err("it has a character outside letters, digits and `-._~:+,=`"),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The query string without credential parameters (`None` if nothing is left), or why it is
/// refused.
fn forwardable_query(query: &str) -> Result<Option<String>, &'static str> {
    if query.len() > MAX_QUERY_BYTES {
        return Err("it is too long");
    }
    for &c in query.as_bytes() {
        if c.is_ascii_control() {
            return Err("it has a control character");
        }
        if !(c.is_ascii_alphanumeric() || b"-._~:+,=&%!$'()*;/?@".contains(&c)) {
            return Err("it has a character outside the URL query alphabet");
        }
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !CREDENTIAL_PARAMS.iter().any(|c| name.eq_ignore_ascii_case(c))
        })
        .collect();
    Ok((!kept.is_empty()).then(|| kept.join("&")))
}

/// Keeps echoed request text short and free of control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> NativePath {
        NativePath::parse(path, None).unwrap_or_else(|e| panic!("{path}: {}", e.message))
    }

    #[test]
    fn the_sdks_paths_pass_unchanged() {
        for path in [
            "/openai/chat/completions",
            "/openai/v1/chat/completions",
            "/openai/responses",
            "/anthropic/v1/messages",
            "/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
            "/google-ai-studio/v1/models/gemini-2.5-flash:streamGenerateContent",
            "/workers-ai/v1/chat/completions",
            "/workers-ai/@cf/meta/llama-3.1-8b-instruct",
            "/azure-openai/my-resource/gpt-4o/chat/completions",
            "/aws-bedrock/bedrock-runtime/us-east-1/model/us.anthropic.claude-haiku-4-5-20251001-v1:0/invoke",
            "/aws-bedrock/bedrock-runtime/us-east-1/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            "/aws-bedrock/bedrock-mantle/us-east-1/anthropic/v1/messages",
        ] {
            let p = ok(path);
            assert_eq!(format!("/{}/{}", p.provider.slug(), p.rest), path);
        }
        let p = ok("/aws-bedrock/bedrock-runtime/us-east-1/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke");
        assert_eq!(p.segments().nth(3).unwrap(), "anthropic.claude-3-haiku-20240307-v1:0");
    }

    #[test]
    fn escapes_are_refused() {
        for path in [
            "/openai/../admin/gateways",
            "/openai/v1/../../x",
            "/openai/./chat/completions",
            "/openai/v1/..",
            "/openai/%2e%2e/admin",
            "/openai/%2E%2E/admin",
            "/openai/.%2e/admin",
            "/openai/%2e/chat",
            "/openai/v1%2f..%2fadmin",
            "/openai/v1%2F..%2Fadmin",
            "/openai/v1%5c..%5cadmin",
            "/openai/%252e%252e/admin",
            "/openai//evil.example/x",
            "/openai/chat//completions",
            "/openai/chat/completions/",
            "/openai/user@evil.example/x",
            "/openai/%40evil.example/x",
            "/openai/https:/evil.example",
            "/openai/https:",
            "/openai/javascript:alert(1)",
            "/openai/chat\\completions",
            "/openai/chat/compl\u{0}etions",
            "/openai/chat/compl\r\netions",
            "/openai/chat/%0d%0aHost:evil",
            "/openai/chat/%00",
            "/openai/chat/completions%",
            "/openai/chat/%zz",
            "/openai/chat/%c3%a9",
            "/openai/chat completions",
            "/openai/chat/é",
            "/openai/chat/<script>",
            "/workers-ai/@evil.example/x",
            "/workers-ai/v1/@cf/x",
            "/anthropic/@cf/x",
        ] {
            let e = NativePath::parse(path, None).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidRequest, "{path:?}: {}", e.message);
            assert!(!e.message.chars().any(char::is_control), "{path:?}: control characters echoed");
        }
        let long = format!("/openai/{}", "a".repeat(MAX_PATH_BYTES + 1));
        assert_eq!(NativePath::parse(&long, None).unwrap_err().kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn only_allow_listed_providers() {
        for path in ["/groq/chat/completions", "/OpenAI/chat/completions", "/admin/gateways", "/", "/openai"] {
            let e = NativePath::parse(path, None).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotFound, "{path}");
        }
    }

    #[test]
    fn queries_lose_credentials_and_keep_the_rest() {
        let p =
            NativePath::parse("/google-ai-studio/v1beta/models/m:streamGenerateContent", Some("alt=sse&key=SECRET"))
                .unwrap();
        assert_eq!(p.query.as_deref(), Some("alt=sse"));
        assert_eq!(p.query_param("alt"), Some("sse"));
        let p = NativePath::parse("/openai/chat/completions", Some("KEY=x&api-key=y")).unwrap();
        assert_eq!(p.query, None);
        let p = NativePath::parse("/azure-openai/r/d/chat/completions", Some("api-version=2024-10-21")).unwrap();
        assert_eq!(p.query_param("api-version"), Some("2024-10-21"));
        for bad in ["a=b c", "a=\u{1}", "a=<x>", "a=\"x\"", "a=é"] {
            assert!(NativePath::parse("/openai/chat/completions", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_upstream_is_always_the_configured_gateway() {
        let settings = Settings::read(|k| match k {
            "CF_ACCOUNT_ID" => Some("acct".into()),
            "AI_GATEWAY_ID" => Some("gw".into()),
            "AI_GATEWAY_URL" => Some("http://127.0.0.1:9/v1/".into()),
            _ => None,
        });
        let p = NativePath::parse(
            "/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            Some("alt=sse"),
        )
        .unwrap();
        assert_eq!(
            p.upstream_url(&settings).unwrap(),
            "http://127.0.0.1:9/v1/acct/gw/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        let no_ids = Settings::read(|_| None);
        assert_eq!(p.upstream_url(&no_ids).unwrap_err().kind, ErrorKind::Configuration);
    }
}
