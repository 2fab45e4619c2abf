//! What the tool knows about the deployment: ids and URLs, tokens (from the environment only),
//! and what the routing configuration asks of the gateway.

use std::path::Path;

use gateway_core::config::{GatewayConfig, DEFAULT_API_URL, DEFAULT_GATEWAY_URL};
use gateway_core::secret::Secret;

/// Ids, URLs and tokens, from environment variables.
#[derive(Debug, Clone)]
pub struct Environment {
    pub account_id: Option<String>,
    pub gateway_id: Option<String>,
    pub api_url: String,
    pub gateway_url: String,
    pub api_token: Option<Secret>,
    pub aig_token: Option<Secret>,
    pub agent_token: Option<Secret>,
}

impl Environment {
    pub fn read(lookup: &impl Fn(&str) -> Option<String>) -> Environment {
        let text = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Environment {
            account_id: text("CF_ACCOUNT_ID"),
            gateway_id: text("AI_GATEWAY_ID"),
            api_url: text("CF_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_owned()).trim_end_matches('/').to_owned(),
            gateway_url: text("AI_GATEWAY_URL")
                .unwrap_or_else(|| DEFAULT_GATEWAY_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            api_token: lookup("CF_API_TOKEN").and_then(Secret::new),
            aig_token: lookup("CF_AIG_TOKEN").and_then(Secret::new),
            agent_token: lookup("AGENT_TOKEN").and_then(Secret::new),
        }
    }

    /// Every secret's value, to keep them out of anything printed.
    pub fn secrets(&self) -> Vec<String> {
        [&self.api_token, &self.aig_token, &self.agent_token]
            .into_iter()
            .flatten()
            .map(|s| s.expose().to_owned())
            .collect()
    }

    /// `{api}/accounts/{account}/ai-gateway/gateways/{gateway}` and the gateway id, or what is missing.
    pub fn gateway_api(&self) -> Result<(String, &str), String> {
        match (&self.account_id, &self.gateway_id) {
            (Some(a), Some(g)) => Ok((format!("{}/accounts/{a}/ai-gateway/gateways", self.api_url), g)),
            _ => Err("CF_ACCOUNT_ID and AI_GATEWAY_ID must be set (the same values as the Worker's vars)".to_owned()),
        }
    }
}

/// What the routing configuration asks of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Providers with limits, each with the first model a route sends to it (if any).
    pub providers: Vec<(String, Option<String>)>,
    /// Every `(provider, model)` a route sends to, once each, in the routes' order.
    pub targets: Vec<(String, String)>,
    /// The longest cache TTL any route asks for (0: no route is cached).
    pub cache_ttl: u64,
}

impl Deployment {
    pub fn from_file(path: &Path) -> Result<Deployment, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read {}: {e} (give the Worker's configuration with --config)", path.display())
        })?;
        Deployment::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_json(text: &str) -> Result<Deployment, String> {
        let config = GatewayConfig::from_json(text).map_err(|e| e.to_string())?;
        let providers = config
            .providers
            .keys()
            .map(|p| {
                let model = config.models().into_iter().find(|t| t.provider() == p).map(|t| t.model().to_owned());
                (p.clone(), model)
            })
            .collect();
        let mut targets: Vec<(String, String)> = Vec::new();
        for t in config.models() {
            let target = (t.provider().to_owned(), t.model().to_owned());
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        let cache_ttl =
            config.aliases.iter().filter_map(|a| a.cache.map(|c| u64::from(c.ttl_seconds))).max().unwrap_or(0);
        Ok(Deployment { providers, targets, cache_ttl })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configuration() {
        let d = Deployment::from_json(include_str!("../../../gateway.config.json")).unwrap();
        let gemini = d.providers.iter().find(|(p, _)| p == "google-ai-studio").unwrap();
        assert_eq!(gemini.1.as_deref(), Some("gemini-3.5-flash-lite"));
        assert!(d.providers.iter().any(|(p, m)| p == "anthropic" && m.is_some()));
        assert!(d.cache_ttl >= 60, "a route of the shipped configuration is cached");
    }

    #[test]
    fn environment_defaults_and_missing_ids() {
        let e = Environment::read(&|_| None);
        assert_eq!(e.api_url, DEFAULT_API_URL);
        assert!(e.gateway_api().is_err());
        let e = Environment::read(&|k: &str| match k {
            "CF_ACCOUNT_ID" => Some("acct".into()),
            "AI_GATEWAY_ID" => Some("gw".into()),
            "CF_API_URL" => Some("http://127.0.0.1:9/client/v4/".into()),
            "CF_API_TOKEN" => Some("tok".into()),
            _ => None,
        });
        assert_eq!(
            e.gateway_api().unwrap(),
            ("http://127.0.0.1:9/client/v4/accounts/acct/ai-gateway/gateways".into(), "gw")
        );
        assert_eq!(e.secrets(), vec!["tok".to_owned()]);
        assert!(!format!("{e:?}").contains("tok\""), "Debug never shows a token");
    }
}
