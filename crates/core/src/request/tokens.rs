//! Scoped tokens (the `AGENT_TOKENS` secret): agent tokens that say who is calling.
//!
//! Whoever holds `AGENT_TOKEN` may name any agent and repository in `x-agent-name` and
//! `x-github-repository`, so budgets per repository and agent are only as good as the callers'
//! honesty. A scoped token is bound to one agent and, optionally, to repository patterns: a call
//! with it is that agent's, and its repository must be one the token allows. The secret is a
//! JSON object keyed by the SHA-256 (hex) of each token, so what is stored does not authenticate
//! anyone:
//!
//! ```json
//! {"<sha256 hex of the token>": {"agent": "ReviewAgent", "repositories": ["octo-org/*", "acme/app"]}}
//! ```
//!
//! A presented token is hashed and compared with every entry in constant time (no early exit),
//! so timing tells nothing of which entry, or how much of a hash, matched.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::request::caller::{canonical_repository, valid_agent, valid_owner, valid_repository};

/// The secret's name, as messages name it.
pub const SECRET_NAME: &str = "AGENT_TOKENS";

/// The scoped tokens of a deployment (none unless `AGENT_TOKENS` is set and valid).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScopedTokens {
    tokens: Vec<ScopedToken>,
}

/// One scoped token: the hash it is known by and who it speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedToken {
    hash: [u8; 32],
    /// The agent every call with this token is attributed to.
    pub agent: String,
    /// The repositories its calls may name; `None`: the token binds the agent only, and the
    /// repository is taken from the header as sent.
    pub repositories: Option<Vec<Pattern>>,
}

/// A repository pattern: `owner/name` exactly, or `owner/*` (every repository of that owner).
/// Kept in the canonical spelling and matched ASCII case-insensitively, as GitHub matches names:
/// `Octo-Org/*` in the secret and `x-github-repository: OCTO-ORG/App` are the pattern and the
/// repository (scope `octo-org/app`) they look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Repository(String),
    Owner(String),
}

impl Pattern {
    fn parse(text: &str) -> Option<Pattern> {
        match text.strip_suffix("/*") {
            Some(owner) => valid_owner(owner).then(|| Pattern::Owner(canonical_repository(owner))),
            None => valid_repository(text).then(|| Pattern::Repository(canonical_repository(text))),
        }
    }

    pub fn matches(&self, repository: &str) -> bool {
        match self {
            Pattern::Repository(r) => r.eq_ignore_ascii_case(repository),
            Pattern::Owner(o) => repository.split_once('/').is_some_and(|(owner, _)| owner.eq_ignore_ascii_case(o)),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Repository(r) => f.write_str(r),
            Pattern::Owner(o) => write!(f, "{o}/*"),
        }
    }
}

impl fmt::Debug for ScopedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopedTokens({} tokens)", self.tokens.len())
    }
}

/// One entry as written in the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    agent: String,
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// The secret's object, every entry in order, duplicates kept (so they can be refused).
struct Entries(Vec<(String, Entry)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Entry>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

impl ScopedTokens {
    /// Reads the secret. A problem is described by position and agent, never by a key or a
    /// value: an operator who stored a token where its hash belongs must not see it in `/healthz`.
    pub fn parse(json: &str) -> Result<ScopedTokens, String> {
        let Entries(entries) = crate::json::from_str(json).map_err(|e| {
            let what = if e.is_data() {
                "must be a JSON object of {\"<sha256 hex of a token>\": {\"agent\": \"…\", \"repositories\": [\"owner/name\" or \"owner/*\", …]}}"
            } else {
                "is not valid JSON"
            };
            format!("{SECRET_NAME} {what} (line {}, column {})", e.line(), e.column())
        })?;
        let mut tokens: Vec<ScopedToken> = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            if !valid_agent(&entry.agent) {
                return Err(format!("{SECRET_NAME}: an entry's `agent` must be 1-64 letters, digits, `.`, `_` or `-`"));
            }
            let agent = entry.agent;
            let Some(hash) = hex_sha256(&key) else {
                return Err(format!(
                    "{SECRET_NAME}: the key of agent `{agent}` is not a SHA-256 in hex (64 hex digits, \
                     `printf %s \"$TOKEN\" | sha256sum`): store hashes of tokens, never tokens"
                ));
            };
            let repositories = match entry.repositories {
                None => None,
                Some(list) => {
                    let patterns: Option<Vec<Pattern>> = list.iter().map(|p| Pattern::parse(p)).collect();
                    match patterns {
                        Some(p) if !p.is_empty() => Some(p),
                        _ => {
                            return Err(format!(
                                "{SECRET_NAME}: `repositories` of agent `{agent}` must list `owner/name` or \
                                 `owner/*` patterns (leave it out to allow any repository)"
                            ))
                        }
                    }
                }
            };
            if let Some(twin) = tokens.iter().find(|t| t.hash == hash) {
                return Err(format!("{SECRET_NAME} lists one token twice (agents `{}` and `{agent}`)", twin.agent));
            }
            tokens.push(ScopedToken { hash, agent, repositories });
        }
        Ok(ScopedTokens { tokens })
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The entry `presented` is the token of. Every entry is compared, each in constant time,
    /// and the match is selected without a branch on it.
    pub fn find(&self, presented: &str) -> Option<&ScopedToken> {
        if self.tokens.is_empty() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, token) in self.tokens.iter().enumerate() {
            let equal = token.hash[..].ct_eq(&digest[..]);
            index.conditional_assign(&(i as u32), equal);
            found |= equal;
        }
        if bool::from(found) {
            self.tokens.get(index as usize)
        } else {
            None
        }
    }
}

impl ScopedToken {
    /// The repository patterns as a message lists them: `octo-org/*`, `acme/app`.
    pub fn patterns(&self) -> String {
        self.repositories.iter().flatten().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
    }

    /// Whether `repository` is one this token's calls may name.
    pub fn allows(&self, repository: &str) -> bool {
        self.repositories.as_ref().is_none_or(|ps| ps.iter().any(|p| p.matches(repository)))
    }
}

/// 64 hex digits (either case) as 32 bytes.
fn hex_sha256(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The SHA-256 of a token in lower-case hex, as `AGENT_TOKENS` keys it (`sha256sum`'s output).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(entries: &[(&str, &str)]) -> String {
        let body: Vec<String> =
            entries.iter().map(|(token, entry)| format!("\"{}\": {entry}", token_hash(token))).collect();
        format!("{{{}}}", body.join(","))
    }

    #[test]
    fn the_hash_is_sha256sums() {
        // printf %s abc | sha256sum
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex_sha256(&token_hash("abc").to_uppercase()), hex_sha256(&token_hash("abc")));
    }

    #[test]
    fn finds_a_token_by_its_hash_only() {
        let tokens = ScopedTokens::parse(&secret(&[
            ("tok-review", r#"{"agent": "ReviewAgent", "repositories": ["octo-org/*", "acme/app"]}"#),
            ("tok-triage", r#"{"agent": "TriagingAgent"}"#),
        ]))
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.find("tok-review").unwrap().agent, "ReviewAgent");
        assert_eq!(tokens.find("tok-triage").unwrap().agent, "TriagingAgent");
        for wrong in ["", "tok-revie", "tok-review ", "TOK-REVIEW", &token_hash("tok-review")] {
            assert!(tokens.find(wrong).is_none(), "{wrong:?}");
        }
        assert!(ScopedTokens::default().find("tok-review").is_none());
        assert!(!format!("{tokens:?}").contains(&token_hash("tok-review")));
    }

    #[test]
    fn the_last_entry_is_found_too() {
        // The selection runs over every entry: the match is kept whatever its position.
        let entries: Vec<(String, String)> =
            (0..20).map(|i| (format!("tok-{i}"), format!(r#"{{"agent": "Agent{i}"}}"#))).collect();
        let refs: Vec<(&str, &str)> = entries.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let tokens = ScopedTokens::parse(&secret(&refs)).unwrap();
        for i in [0, 7, 19] {
            assert_eq!(tokens.find(&format!("tok-{i}")).unwrap().agent, format!("Agent{i}"));
        }
    }

    #[test]
    fn patterns() {
        let exact = Pattern::parse("acme/app").unwrap();
        let owner = Pattern::parse("octo-org/*").unwrap();
        assert!(exact.matches("acme/app") && exact.matches("Acme/APP"));
        assert!(!exact.matches("acme/app2") && !exact.matches("acme/ap") && !exact.matches("acme/app\u{212a}"));
        assert!(owner.matches("octo-org/x") && owner.matches("octo-org/monorepo") && owner.matches("Octo-Org/x"));
        // Spelled any way in the secret: kept canonical.
        assert_eq!(Pattern::parse("Octo-Org/*").unwrap(), owner);
        assert_eq!(Pattern::parse("ACME/App").unwrap(), exact);
        assert!(!owner.matches("octo-org2/x") && !owner.matches("octo/x") && !owner.matches("octo-org"));
        assert_eq!(owner.to_string(), "octo-org/*");
        for bad in ["*", "*/*", "acme", "acme/", "acme/*/x", "ac me/app", "acme/app*", "/*", "acme/.."] {
            assert!(Pattern::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bad_secrets_are_named_never_shown() {
        let raw = "agt-raw-token-stored-by-mistake";
        for (json, says) in [
            ("not json".to_owned(), "is not valid JSON"),
            ("[]".to_owned(), "must be a JSON object"),
            (format!(r#"{{"{raw}": {{"agent": "A"}}}}"#), "not a SHA-256"),
            (secret(&[(raw, r#"{"agent": "A", "repos": []}"#)]), "must be a JSON object"),
            (secret(&[(raw, r#"{"repositories": ["a/b"]}"#)]), "must be a JSON object"),
            (secret(&[(raw, r#"{"agent": "bad agent"}"#)]), "`agent` must be"),
            (secret(&[(raw, r#"{"agent": "A", "repositories": []}"#)]), "`repositories` of agent `A`"),
            (secret(&[(raw, r#"{"agent": "A", "repositories": ["*"]}"#)]), "`repositories` of agent `A`"),
            (secret(&[(raw, r#"{"agent": "A"}"#), (raw, r#"{"agent": "B"}"#)]), "one token twice"),
        ] {
            let problem = ScopedTokens::parse(&json).unwrap_err();
            assert!(problem.starts_with("AGENT_TOKENS"), "{problem}");
            assert!(problem.contains(says), "{json}: {problem}");
            assert!(!problem.contains(raw) && !problem.contains(&token_hash(raw)), "{problem}");
        }
        assert!(ScopedTokens::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn allows() {
        let tokens = ScopedTokens::parse(&secret(&[
            ("a", r#"{"agent": "A", "repositories": ["octo-org/*", "acme/app"]}"#),
            ("b", r#"{"agent": "B"}"#),
        ]))
        .unwrap();
        let a = tokens.find("a").unwrap();
        assert!(a.allows("octo-org/x") && a.allows("acme/app") && !a.allows("acme/other"));
        assert_eq!(a.patterns(), "`octo-org/*`, `acme/app`");
        assert!(tokens.find("b").unwrap().allows("anyone/anything"));
    }
}
