//! Who is calling: the `x-agent-name` and `x-github-repository` headers, validated, and the one
//! spelling of a repository. The scopes, the scoped tokens, the ledger and AI Gateway's metadata
//! all name a caller this way.

use crate::error::{ErrorKind, GatewayError};

/// Who is calling, from the `x-agent-name` and `x-github-repository` headers, validated. The
/// repository is in its canonical spelling ([`canonical_repository`]); the agent is as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub agent: Option<String>,
    pub repository: Option<String>,
}

impl Caller {
    /// Validates the caller headers. They end up in AI Gateway's logs and in `/analytics` groups,
    /// so they are held to a strict alphabet (no control characters, quotes or spaces). The
    /// repository is validated as sent, then made canonical: `Octo-Org/Repo` is `octo-org/repo`,
    /// one budget scope, one ledger name. The agent is the agent's own name (not GitHub's), so its
    /// case is kept: `ReviewAgent` and `reviewagent` are two agents, as a scoped token binds them.
    pub fn from_headers(agent: Option<&str>, repository: Option<&str>) -> Result<Caller, GatewayError> {
        let agent = agent.map(str::trim).filter(|s| !s.is_empty());
        let repository = repository.map(str::trim).filter(|s| !s.is_empty());
        if let Some(a) = agent {
            if !valid_agent(a) {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    "Header `x-agent-name` must be 1-64 characters of letters, digits, `.`, `_` or `-`.",
                ));
            }
        }
        if let Some(r) = repository {
            if !valid_repository(r) {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    "Header `x-github-repository` must be `owner/name` (GitHub's characters only).",
                ));
            }
        }
        Ok(Caller { agent: agent.map(str::to_owned), repository: repository.map(canonical_repository) })
    }
}

/// An agent name as `x-agent-name` may carry it: 1-64 letters, digits, `.`, `_` or `-`.
pub fn valid_agent(a: &str) -> bool {
    (1..=64).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A repository as `owner/name`, in GitHub's characters.
pub fn valid_repository(r: &str) -> bool {
    let Some((owner, name)) = r.split_once('/') else { return false };
    let name_ok = (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    valid_owner(owner) && name_ok
}

/// The one spelling of a repository (or owner) name: ASCII lower case. GitHub matches owner and
/// repository names case-insensitively, and they are ASCII (`[A-Za-z0-9._-]`, checked before),
/// so every spelling of one repository is one scope key, one pattern match, one ledger name and
/// one `/analytics` group.
pub fn canonical_repository(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A GitHub user or organisation name: 1-39 letters, digits or `-`.
pub fn valid_owner(owner: &str) -> bool {
    (1..=39).contains(&owner.len()) && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_headers_are_validated() {
        let c = Caller::from_headers(Some("TriagingAgent"), Some("octo-org/my.repo_1")).unwrap();
        assert_eq!(c.agent.as_deref(), Some("TriagingAgent"));
        assert_eq!(Caller::from_headers(None, Some("  ")).unwrap(), Caller::default());
        // One repository however it is spelled; the agent as sent.
        let c = Caller::from_headers(Some("ReviewAgent"), Some(" Octo-Org/My.Repo_1 ")).unwrap();
        assert_eq!((c.agent.as_deref(), c.repository.as_deref()), (Some("ReviewAgent"), Some("octo-org/my.repo_1")));
        for (agent, repo) in [
            (Some("Triaging Agent"), None),
            (Some("a\"b"), None),
            (Some(&"x".repeat(65) as &str), None),
            (None, Some("no-slash")),
            (None, Some("a/b/c")),
            (None, Some("own er/x")),
            (None, Some("owner/..")),
            (None, Some("owner/x\r\ny")),
            // Refused before any case is folded: no Unicode folds into a new name.
            (None, Some("Octo-Org/R\u{0130}po")),
            (None, Some("octo-org/repo\u{212a}")),
            (None, Some("octo-org%2Frepo")),
            (None, Some("octo-org/a%2Fb")),
            (None, Some(&format!("octo-org/{}", "R".repeat(10_000)) as &str)),
        ] {
            assert_eq!(
                Caller::from_headers(agent, repo).unwrap_err().kind,
                ErrorKind::InvalidRequest,
                "{agent:?} {repo:?}"
            );
        }
    }
}
