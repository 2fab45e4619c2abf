//! What a request needs from the environment: settings (vars and secrets) and the routing
//! configuration, both read and validated once per isolate, not once per request.

use std::rc::Rc;

use gateway_core::config::{ConfigError, GatewayConfig, Settings};
use gateway_core::money::pricing::Prices;
use worker::Env;

/// The configuration compiled into the Worker; the `GATEWAY_CONFIG` var replaces it when set.
const SHIPPED_CONFIG: &str = include_str!("../gateway.config.json");

#[derive(Clone)]
pub struct Ctx {
    pub settings: Rc<Settings>,
    pub config: Rc<Result<GatewayConfig, ConfigError>>,
    /// The price table compiled in (`prices.json`).
    pub prices: Rc<Prices>,
}

thread_local! {
    // A Worker isolate runs one thread; its bindings do not change while it lives (a new deploy or
    // a changed secret starts a new isolate), so reading them once is safe.
    static LOADED: std::cell::OnceCell<Ctx> = const { std::cell::OnceCell::new() };
}

impl Ctx {
    pub fn load(env: &Env) -> Ctx {
        LOADED.with(|cell| cell.get_or_init(|| Ctx::read(env)).clone())
    }

    fn read(env: &Env) -> Ctx {
        let lookup = |name: &str| env.var(name).ok().map(|v| v.to_string());
        let settings = Settings::read(lookup);
        let prices = Prices::shipped();
        let config = match lookup("GATEWAY_CONFIG").filter(|c| !c.trim().is_empty()) {
            Some(custom) => GatewayConfig::from_json_with_prices(&custom, &prices),
            None => GatewayConfig::from_json_with_prices(SHIPPED_CONFIG, &prices),
        };
        if let Err(err) = &config {
            worker::console_error!("{err}");
        }
        for problem in &settings.invalid {
            worker::console_error!("invalid setting: {problem}");
        }
        Ctx { settings: Rc::new(settings), config: Rc::new(config), prices: Rc::new(prices) }
    }

    /// The routing configuration, or the 500 that explains why there is none.
    pub fn config(&self) -> Result<&GatewayConfig, gateway_core::error::GatewayError> {
        self.config.as_ref().as_ref().map_err(|e| {
            gateway_core::error::GatewayError::new(gateway_core::error::ErrorKind::Configuration, e.to_string())
        })
    }

    /// Every secret's value, for redaction (the views and management calls).
    pub fn secrets(&self) -> Vec<&str> {
        self.settings.secret_values()
    }
}
