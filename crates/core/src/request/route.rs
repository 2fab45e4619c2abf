//! The route table: which handler serves a (method, path), or why none does (404 vs 405).

use crate::error::{ErrorKind, GatewayError};
use crate::provider::Provider;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`: OpenAI Chat Completions, streaming or not.
    ChatCompletions,
    /// `GET /v1/models`: aliases and configured models, in OpenAI's list shape.
    Models,
    /// `GET /healthz`: whether configuration is complete (never a secret's value).
    Health,
    /// `GET /limits`: each provider's rate-limit window and today's spend and reservations.
    Limits,
    /// `POST /{provider}/{rest}`: a provider-native call, forwarded to AI Gateway as it is.
    Native(Provider),
    /// `/admin/gateways[/{id}[/provider_configs]]`: AI Gateway management, behind `ADMIN_TOKEN`.
    Admin,
    /// `GET /analytics`: AI Gateway's logs as cost per provider, model, agent, repository, day.
    Analytics,
}

/// Which credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    None,
    /// `AGENT_TOKEN` or a scoped token of `AGENT_TOKENS` as `Authorization: Bearer` (the OpenAI
    /// SDK's way, and only that).
    AgentBearer,
    /// The same tokens in whichever header the provider's SDK puts its key
    /// ([`crate::native::credentials`]).
    AgentKeyHeader,
    /// `ADMIN_TOKEN` as `Authorization: Bearer`.
    Admin,
    /// `AGENT_TOKEN` or `ANALYTICS_TOKEN`, as Bearer or as the Basic password
    /// ([`crate::analytics::access`]).
    Analytics,
}

impl Route {
    /// Whether the caller must present `AGENT_TOKEN`.
    pub fn needs_auth(self) -> bool {
        !matches!(self, Route::Health)
    }

    /// The credential the route takes.
    pub fn credential(self) -> Credential {
        match self {
            Route::Health => Credential::None,
            Route::Native(_) => Credential::AgentKeyHeader,
            Route::Admin => Credential::Admin,
            Route::Analytics => Credential::Analytics,
            _ => Credential::AgentBearer,
        }
    }
}

/// `(path, allowed method, route)`: the whole public surface of the Worker in one table.
const TABLE: &[(&str, &str, Route)] = &[
    ("/v1/chat/completions", "POST", Route::ChatCompletions),
    ("/v1/models", "GET", Route::Models),
    ("/healthz", "GET", Route::Health),
    ("/limits", "GET", Route::Limits),
    ("/analytics", "GET", Route::Analytics),
];

/// Routes matched by shape, `(pattern, allowed methods, route)`: `*` is one non-empty segment,
/// `**` is the rest of the path (at least one byte; native paths are checked in detail later).
const PATTERNS: &[(&str, &str, Route)] = &[
    ("/openai/**", "POST", Route::Native(Provider::OpenAi)),
    ("/anthropic/**", "POST", Route::Native(Provider::Anthropic)),
    ("/google-ai-studio/**", "POST", Route::Native(Provider::GoogleAiStudio)),
    ("/workers-ai/**", "POST", Route::Native(Provider::WorkersAi)),
    ("/azure-openai/**", "POST", Route::Native(Provider::AzureOpenAi)),
    ("/aws-bedrock/**", "POST", Route::Native(Provider::AwsBedrock)),
    ("/admin/gateways", "GET, POST", Route::Admin),
    ("/admin/gateways/*", "GET, PUT, DELETE", Route::Admin),
    ("/admin/gateways/*/provider_configs", "GET, POST", Route::Admin),
];

fn matches_pattern(pattern: &str, path: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("**") {
        return path.len() > prefix.len() && path.starts_with(prefix);
    }
    let (mut want, mut have) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(w), Some(seg)) if w == seg => {}
            _ => return false,
        }
    }
}

/// The allowed methods and route of a path, from either table.
fn lookup(path: &str) -> Option<(&'static str, Route)> {
    TABLE
        .iter()
        .find(|(p, _, _)| *p == path)
        .or_else(|| PATTERNS.iter().find(|(p, _, _)| matches_pattern(p, path)))
        .map(|&(_, allowed, route)| (allowed, route))
}

/// Resolves a request to a route. `HEAD` is served wherever `GET` is.
pub fn resolve(method: &str, path: &str) -> Result<Route, GatewayError> {
    let Some((allowed, route)) = lookup(path) else {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            format!(
                "Unknown route `{}`. Routes: POST /v1/chat/completions, GET /v1/models, GET /healthz, GET /limits, GET /analytics, \
                 POST /{{provider}}/… (openai, anthropic, google-ai-studio, workers-ai, azure-openai, aws-bedrock), \
                 /admin/gateways.",
                printable(path)
            ),
        ));
    };
    if allowed.split(", ").any(|m| m == method || (method == "HEAD" && m == "GET")) {
        Ok(route)
    } else {
        Err(GatewayError::new(
            ErrorKind::MethodNotAllowed,
            format!("Method {} is not allowed on {path}; use {allowed}.", printable(method)),
        ))
    }
}

/// The methods a path allows, for the `Allow` header of a 405.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    lookup(path).map(|(m, _)| match m {
        "GET" => "GET, HEAD",
        other => other,
    })
}

/// Keeps echoed request text short and free of control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_contract_routes() {
        assert_eq!(resolve("POST", "/v1/chat/completions"), Ok(Route::ChatCompletions));
        assert_eq!(resolve("GET", "/v1/models"), Ok(Route::Models));
        assert_eq!(resolve("GET", "/healthz"), Ok(Route::Health));
        assert_eq!(resolve("HEAD", "/healthz"), Ok(Route::Health));
    }

    #[test]
    fn unknown_path_is_404_wrong_method_is_405() {
        assert_eq!(resolve("GET", "/v1/completions").unwrap_err().status(), 404);
        assert_eq!(resolve("POST", "/v1/chat/completions/").unwrap_err().status(), 404);
        let e = resolve("GET", "/v1/chat/completions").unwrap_err();
        assert_eq!(e.status(), 405);
        assert!(e.message.contains("POST"));
        assert_eq!(allowed_methods("/v1/chat/completions"), Some("POST"));
        assert_eq!(allowed_methods("/healthz"), Some("GET, HEAD"));
    }

    #[test]
    fn only_health_is_open() {
        assert!(!Route::Health.needs_auth());
        assert!(Route::ChatCompletions.needs_auth());
        assert!(Route::Models.needs_auth());
        assert!(Route::Limits.needs_auth());
    }

    #[test]
    fn native_and_admin_routes_by_shape() {
        assert_eq!(resolve("POST", "/anthropic/v1/messages"), Ok(Route::Native(Provider::Anthropic)));
        assert_eq!(
            resolve("POST", "/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent"),
            Ok(Route::Native(Provider::GoogleAiStudio))
        );
        assert_eq!(resolve("POST", "/aws-bedrock/x"), Ok(Route::Native(Provider::AwsBedrock)));
        for path in ["/openai", "/openai/", "/groq/chat/completions", "/openaix/chat"] {
            assert_eq!(resolve("POST", path).unwrap_err().status(), 404, "{path}");
        }
        let e = resolve("GET", "/openai/models").unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(allowed_methods("/openai/models"), Some("POST"));

        assert_eq!(resolve("GET", "/admin/gateways"), Ok(Route::Admin));
        assert_eq!(resolve("POST", "/admin/gateways"), Ok(Route::Admin));
        assert_eq!(resolve("PUT", "/admin/gateways/prod"), Ok(Route::Admin));
        assert_eq!(resolve("DELETE", "/admin/gateways/prod"), Ok(Route::Admin));
        assert_eq!(resolve("POST", "/admin/gateways/prod/provider_configs"), Ok(Route::Admin));
        assert_eq!(resolve("PUT", "/admin/gateways").unwrap_err().status(), 405);
        assert_eq!(allowed_methods("/admin/gateways/prod"), Some("GET, PUT, DELETE"));
        for path in ["/admin", "/admin/gateways/", "/admin/gateways//provider_configs", "/admin/gateways/a/b"] {
            assert_eq!(resolve("GET", path).unwrap_err().status(), 404, "{path}");
        }
    }

    #[test]
    fn credentials_per_route() {
        assert_eq!(Route::Health.credential(), Credential::None);
        assert_eq!(Route::ChatCompletions.credential(), Credential::AgentBearer);
        assert_eq!(Route::Native(Provider::OpenAi).credential(), Credential::AgentKeyHeader);
        assert_eq!(Route::Admin.credential(), Credential::Admin);
        assert_eq!(Route::Analytics.credential(), Credential::Analytics);
        assert_eq!(resolve("GET", "/analytics"), Ok(Route::Analytics));
        assert_eq!(resolve("POST", "/analytics").unwrap_err().status(), 405);
    }

    #[test]
    fn echoed_path_is_sanitised() {
        let e = resolve("GET", "/x\u{7}y").unwrap_err();
        assert!(e.message.contains("/xy"));
    }
}
