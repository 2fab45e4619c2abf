//! From the request's `model` to the ordered list of targets to try.

use crate::config::{CachePolicy, GatewayConfig, ModelId, RequestFacts};
use crate::engine::Target;
use crate::error::{ErrorKind, GatewayError};
use crate::money::pricing::Prices;

/// What a request will try, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'c> {
    /// The alias the caller named, or `None` for an explicit `provider/model`.
    pub alias: Option<&'c str>,
    pub targets: Vec<ModelId>,
    /// The route's cache policy (explicit models are never cached by the gateway's choice).
    pub cache: Option<CachePolicy>,
}

impl Plan<'_> {
    /// The engine's view of each target: whose limits an attempt reserves in, and what one
    /// attempt may cost at most — its estimated prompt and `max_output` tokens at the target's
    /// price (a request without an output limit is sent the route's, so this is a real bound).
    pub fn engine_targets<'p>(
        &'p self,
        config: &GatewayConfig,
        prices: &Prices,
        prompt_tokens: u64,
        max_output: u64,
    ) -> Result<Vec<Target<'p>>, GatewayError> {
        self.targets
            .iter()
            .map(|t| {
                let (Some(limits), Some(price)) =
                    (config.providers.get(t.provider()), prices.lookup(t.provider(), t.model()))
                else {
                    // Configuration validation makes this unreachable; say so rather than spend blind.
                    return Err(GatewayError::new(
                        ErrorKind::Configuration,
                        format!("{} has no limits or price", t.id),
                    ));
                };
                Ok(Target {
                    id: &t.id,
                    provider: t.provider(),
                    limits: *limits,
                    worst_case: price.worst_case(prompt_tokens, max_output),
                })
            })
            .collect()
    }
}

/// Resolves `model`. A configured alias gives the chain its rules or split choose (`roll` is a
/// uniform random number in `[0, 1)` for the split). An explicit `provider/model` is allowed
/// when its provider is configured (every provider needs limits) and it has a price (else its
/// budget could not be enforced).
pub fn plan<'c>(
    config: &'c GatewayConfig,
    prices: &Prices,
    model: &str,
    facts: &RequestFacts,
    roll: f64,
) -> Result<Plan<'c>, GatewayError> {
    if let Some(alias) = config.alias(model) {
        return Ok(Plan {
            alias: Some(alias.name.as_str()),
            targets: alias.chain(facts, roll).to_vec(),
            cache: alias.cache,
        });
    }
    let shown: String = model.chars().filter(|c| !c.is_control()).take(120).collect();
    match ModelId::parse(model) {
        Some(target) if !config.providers.contains_key(target.provider()) => Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "The model `{shown}` does not exist here: provider `{}` is not configured. Configured providers: {}.",
                target.provider(),
                config.providers.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
        Some(target) if prices.lookup(target.provider(), target.model()).is_none() => Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "The model `{shown}` has no price in this gateway's price table, so its provider's daily budget \
                 could not be enforced. Ask the operator to add it to prices.json."
            ),
        )),
        Some(target) => Ok(Plan { alias: None, targets: vec![target], cache: None }),
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

    fn plan_of<'c>(c: &'c GatewayConfig, model: &str) -> Result<Plan<'c>, GatewayError> {
        plan(c, &Prices::shipped(), model, &RequestFacts::default(), 0.0)
    }

    /// Each target reserves in its provider's limits what its prompt and output limit cost at
    /// its own price; a target without limits or a price is a configuration error, never a
    /// reservation of nothing.
    #[test]
    fn each_target_reserves_its_worst_case_at_its_own_price() {
        let c = config();
        let prices = Prices::shipped();
        let p = plan_of(&c, "triage").unwrap();
        let targets = p.engine_targets(&c, &prices, 1_000, 500).unwrap();
        assert_eq!(targets.len(), p.targets.len());
        for (t, id) in targets.iter().zip(&p.targets) {
            let price = prices.lookup(id.provider(), id.model()).unwrap();
            assert_eq!((t.id, t.provider, t.model()), (id.id.as_str(), id.provider(), id.model()));
            assert_eq!(t.limits, c.providers[id.provider()]);
            assert_eq!(t.worst_case, price.worst_case(1_000, 500));
        }
        let unpriced = Plan { targets: vec![ModelId::parse("openai/not-a-model").unwrap()], ..p.clone() };
        let err = unpriced.engine_targets(&c, &prices, 1_000, 500).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Configuration);
    }

    #[test]
    fn alias_gives_its_chain_in_order() {
        let c = config();
        let p = plan_of(&c, "review").unwrap();
        assert_eq!(p.alias, Some("review"));
        let ids: Vec<&str> = p.targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["google-ai-studio/gemini-3.5-flash-lite", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]);
    }

    #[test]
    fn large_reviews_skip_models_with_a_small_context_window() {
        let c = config();
        let facts = RequestFacts { input_tokens: 150_000, ..Default::default() };
        let p = plan(&c, &Prices::shipped(), "review", &facts, 0.0).unwrap();
        assert!(p.targets.iter().all(|t| t.id != "openai/gpt-4o"), "{:?}", p.targets);
    }

    #[test]
    fn explicit_model_of_configured_provider() {
        let c = config();
        let p = plan_of(&c, "openai/gpt-4o").unwrap();
        assert_eq!(p.alias, None);
        assert_eq!(p.targets, vec![ModelId::parse("openai/gpt-4o").unwrap()]);
        assert_eq!(p.cache, None);
    }

    #[test]
    fn unknown_or_unpriced_models_are_404_with_a_hint() {
        let c = config();
        let e = plan_of(&c, "gpt-4").unwrap_err();
        assert_eq!(e.kind, ErrorKind::ModelNotFound);
        assert!(e.message.contains("triage"), "{}", e.message);
        let e = plan_of(&c, "groq/llama").unwrap_err();
        assert!(e.message.contains("provider `groq` is not configured"), "{}", e.message);
        let e = plan_of(&c, "openai/gpt-4.1").unwrap_err();
        assert!(e.message.contains("no price"), "{}", e.message);
    }
}
