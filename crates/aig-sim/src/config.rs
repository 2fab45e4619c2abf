//! Command line and environment.
//!
//! Every flag has an environment twin (`--gateway-token` ↔ `SIM_GATEWAY_TOKEN`); a flag on the
//! command line wins over its variable. Parsed by hand: there are only a handful of flags and the
//! simulator should compile fast.

use std::net::SocketAddr;

/// What the simulator pretends to be, and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to bind; must be a loopback address (the simulator has no business on a network).
    pub listen: SocketAddr,
    pub account_id: String,
    /// The gateway that exists at start (more can be created with the gateways API).
    pub gateway_id: String,
    /// Expected in `cf-aig-authorization: Bearer …`; empty = the gateway is unauthenticated.
    pub gateway_token: String,
    /// Expected in `Authorization: Bearer …` on the `api.cloudflare.com` (v4) routes.
    pub api_token: String,
    /// Fixed latency added before every answer on the inference routes.
    pub latency_ms: u64,
    /// The gateway's default cache TTL in seconds (0 = caching only when a request asks).
    pub cache_ttl: u64,
    /// Pause between two streamed events, so clients see them arrive over time.
    pub chunk_delay_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8788)),
            account_id: "local-account".into(),
            gateway_id: "agent-gateway".into(),
            gateway_token: "sim-gateway-token".into(),
            api_token: "sim-api-token".into(),
            latency_ms: 0,
            cache_ttl: 0,
            chunk_delay_ms: 1,
        }
    }
}

pub const USAGE: &str = "\
aig-sim: local Cloudflare AI Gateway simulator

USAGE:
  aig-sim [--listen 127.0.0.1:8788] [--account-id local-account] [--gateway-id agent-gateway]
          [--gateway-token sim-gateway-token] [--api-token sim-api-token]
          [--latency-ms 0] [--cache-ttl 0] [--chunk-delay-ms 1]

Each flag can also be set with an environment variable (the flag wins):
  SIM_LISTEN SIM_ACCOUNT_ID SIM_GATEWAY_ID SIM_GATEWAY_TOKEN SIM_API_TOKEN
  SIM_LATENCY_MS SIM_CACHE_TTL SIM_CHUNK_DELAY_MS
--gateway-token \"\" makes the gateway unauthenticated. --listen 127.0.0.1:0 picks a free port;
the chosen address is printed on stdout as {\"listening\":\"127.0.0.1:PORT\"}.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Config),
    Help,
}

/// Flag name, environment variable, and how to apply a value.
type Setter = fn(&mut Config, &str) -> Result<(), String>;

const FLAGS: &[(&str, &str, Setter)] = &[
    ("--listen", "SIM_LISTEN", |c, v| {
        let addr: SocketAddr =
            v.parse().map_err(|_| format!("--listen: `{v}` is not an address like 127.0.0.1:8788"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("--listen: `{v}` is not a loopback address"));
        }
        c.listen = addr;
        Ok(())
    }),
    ("--account-id", "SIM_ACCOUNT_ID", |c, v| {
        c.account_id = non_empty("--account-id", v)?;
        Ok(())
    }),
    ("--gateway-id", "SIM_GATEWAY_ID", |c, v| {
        c.gateway_id = non_empty("--gateway-id", v)?;
        Ok(())
    }),
    ("--gateway-token", "SIM_GATEWAY_TOKEN", |c, v| {
        c.gateway_token = v.to_string();
        Ok(())
    }),
    ("--api-token", "SIM_API_TOKEN", |c, v| {
        c.api_token = v.to_string();
        Ok(())
    }),
    ("--latency-ms", "SIM_LATENCY_MS", |c, v| {
        c.latency_ms = number("--latency-ms", v)?;
        Ok(())
    }),
    ("--cache-ttl", "SIM_CACHE_TTL", |c, v| {
        c.cache_ttl = number("--cache-ttl", v)?;
        Ok(())
    }),
    ("--chunk-delay-ms", "SIM_CHUNK_DELAY_MS", |c, v| {
        c.chunk_delay_ms = number("--chunk-delay-ms", v)?;
        Ok(())
    }),
];

fn non_empty(flag: &str, v: &str) -> Result<String, String> {
    if v.is_empty() {
        Err(format!("{flag} must not be empty"))
    } else {
        Ok(v.to_string())
    }
}

fn number(flag: &str, v: &str) -> Result<u64, String> {
    v.parse().map_err(|_| format!("{flag}: `{v}` is not a non-negative integer"))
}

/// Builds the configuration from arguments (without the program name) and an environment lookup.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
{
    let mut config = Config::default();
    for (_, var, set) in FLAGS {
        if let Some(v) = env(var) {
            set(&mut config, &v).map_err(|e| format!("{var}: {e}"))?;
        }
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        // Both `--flag value` and `--flag=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let Some((_, _, set)) = FLAGS.iter().find(|(f, _, _)| *f == name) else {
            return Err(format!("unknown argument `{arg}` (see --help)"));
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        set(&mut config, &value)?;
    }
    Ok(Command::Run(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match parse(args.iter().map(|s| s.to_string()), |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))? {
            Command::Run(c) => Ok(c),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(run(&[], &[]).unwrap(), Config::default());
    }

    #[test]
    fn flags_beat_env() {
        let c = run(
            &["--latency-ms", "5", "--gateway-token=", "--listen=127.0.0.1:0"],
            &[("SIM_LATENCY_MS", "9"), ("SIM_CACHE_TTL", "60")],
        )
        .unwrap();
        assert_eq!(c.latency_ms, 5);
        assert_eq!(c.cache_ttl, 60);
        assert_eq!(c.gateway_token, "");
        assert_eq!(c.listen.port(), 0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(run(&["--latency-ms", "-1"], &[]).is_err());
        assert!(run(&["--listen", "0.0.0.0:80"], &[]).is_err());
        assert!(run(&["--nope"], &[]).is_err());
        assert!(run(&["--gateway-id"], &[]).is_err());
        assert!(run(&[], &[("SIM_CACHE_TTL", "x")]).is_err());
        assert_eq!(run(&["--help"], &[]), Err("help".into()));
    }
}
