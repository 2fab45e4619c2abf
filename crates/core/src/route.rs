//! The route table: which handler serves a (method, path), or why none does (404 vs 405).

use crate::error::{ErrorKind, GatewayError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`: OpenAI Chat Completions, streaming or not.
    ChatCompletions,
    /// `GET /v1/models`: aliases and configured models, in OpenAI's list shape.
    Models,
    /// `GET /healthz`: whether configuration is complete (never a secret's value).
    Health,
}

impl Route {
    /// Whether the caller must present `AGENT_TOKEN`.
    pub fn needs_auth(self) -> bool {
        !matches!(self, Route::Health)
    }
}

/// `(path, allowed method, route)`: the whole public surface of the Worker in one table.
const TABLE: &[(&str, &str, Route)] = &[
    ("/v1/chat/completions", "POST", Route::ChatCompletions),
    ("/v1/models", "GET", Route::Models),
    ("/healthz", "GET", Route::Health),
];

/// Resolves a request to a route. `HEAD` is served wherever `GET` is.
pub fn resolve(method: &str, path: &str) -> Result<Route, GatewayError> {
    let Some(&(_, allowed, route)) = TABLE.iter().find(|(p, _, _)| *p == path) else {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            format!(
                "Unknown route `{}`. Routes: POST /v1/chat/completions, GET /v1/models, GET /healthz.",
                printable(path)
            ),
        ));
    };
    if method == allowed || (method == "HEAD" && allowed == "GET") {
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
    TABLE.iter().find(|(p, _, _)| *p == path).map(|(_, m, _)| match *m {
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
    }

    #[test]
    fn echoed_path_is_sanitised() {
        let e = resolve("GET", "/x\u{7}y").unwrap_err();
        assert!(e.message.contains("/xy"));
    }
}
