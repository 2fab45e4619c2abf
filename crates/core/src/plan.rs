//! From the request's `model` to the ordered list of targets to try.

use crate::config::{GatewayConfig, Target};
use crate::error::{ErrorKind, GatewayError};

/// What a request will try, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'c> {
    /// The alias the caller named, or `None` for an explicit `provider/model`.
    pub alias: Option<&'c str>,
    pub targets: Vec<Target>,
}

/// Resolves `model`: a configured alias gives its chain; an explicit `provider/model` is allowed
/// when its provider is configured (every provider needs limits, so an unconfigured one would
/// bypass them).
pub fn plan<'c>(config: &'c GatewayConfig, model: &str) -> Result<Plan<'c>, GatewayError> {
    if let Some(alias) = config.alias(model) {
        return Ok(Plan { alias: Some(alias.name.as_str()), targets: alias.targets.clone() });
    }
    let shown: String = model.chars().filter(|c| !c.is_control()).take(120).collect();
    match Target::parse(model) {
        Some(target) if config.providers.contains_key(target.provider()) => {
            Ok(Plan { alias: None, targets: vec![target] })
        }
        Some(target) => Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "The model `{shown}` does not exist here: provider `{}` is not configured. Configured providers: {}.",
                target.provider(),
                config.providers.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
        None => Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "The model `{shown}` does not exist here. Use an alias ({}) or `provider/model`.",
                config.aliases.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GatewayConfig {
        GatewayConfig::from_json(include_str!("../../../gateway.config.json")).unwrap()
    }

    #[test]
    fn alias_gives_its_chain_in_order() {
        let c = config();
        let p = plan(&c, "review").unwrap();
        assert_eq!(p.alias, Some("review"));
        let ids: Vec<&str> = p.targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["google-ai-studio/gemini-2.5-flash", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]);
    }

    #[test]
    fn explicit_model_of_configured_provider() {
        let c = config();
        let p = plan(&c, "openai/gpt-4.1").unwrap();
        assert_eq!(p.alias, None);
        assert_eq!(p.targets, vec![Target::parse("openai/gpt-4.1").unwrap()]);
    }

    #[test]
    fn unknown_models_are_404_with_a_hint() {
        let c = config();
        let e = plan(&c, "gpt-4").unwrap_err();
        assert_eq!(e.kind, ErrorKind::ModelNotFound);
        assert!(e.message.contains("triage"), "{}", e.message);
        let e = plan(&c, "groq/llama").unwrap_err();
        assert!(e.message.contains("provider `groq` is not configured"), "{}", e.message);
    }
}
