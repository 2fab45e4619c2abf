//! The command line. Secrets are never arguments (they would land in shell history and in `ps`):
//! tokens and provider keys come from environment variables or standard input only.

use std::path::PathBuf;

pub const USAGE: &str = "\
agw: set up and check the Cloudflare AI Gateway behind agent-gateway

USAGE:
  agw setup  [--config gateway.config.json] [--cache-ttl SECONDS] [--keys-from-stdin]
  agw doctor [--config gateway.config.json] [--worker-url URL]
  agw keys   [--config gateway.config.json]
  agw help

  setup   creates the gateway (or updates it) with authentication and logs on and the cache
          TTL from the configuration (the longest route cache TTL, or --cache-ttl), then stores
          the provider keys it is given (BYOK) that the gateway does not have yet.
  doctor  checks the deployment end to end and says what is wrong and how to fix it:
          the gateway exists and is authenticated, keys are stored per provider, a one-token
          request through each provider answers (through the Worker with --worker-url, else
          straight to the gateway), and the logs API reads. Exit code 1 if anything failed.
  keys    lists the stored provider keys (their previews only; a secret is never shown).

ENVIRONMENT (secrets only ever here, never in arguments):
  CF_ACCOUNT_ID, AI_GATEWAY_ID   which account and gateway
  CF_API_TOKEN                   Cloudflare API token with AI Gateway Read and Edit
  CF_API_URL                     default https://api.cloudflare.com/client/v4
  AI_GATEWAY_URL                 default https://gateway.ai.cloudflare.com/v1
  CF_AIG_TOKEN                   the gateway's authentication token (doctor, without --worker-url)
  AGENT_TOKEN                    the Worker's token (doctor --worker-url)
  Provider keys for setup: OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_AI_STUDIO_API_KEY (or
  GEMINI_API_KEY), WORKERS_AI_API_TOKEN, AZURE_OPENAI_API_KEY, AWS_BEDROCK_API_KEY; or, with
  --keys-from-stdin, lines `provider=key` on standard input (e.g. `openai=sk-...`).
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Setup,
    Doctor,
    Keys,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub config: PathBuf,
    pub cache_ttl: Option<u64>,
    pub keys_from_stdin: bool,
    pub worker_url: Option<String>,
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = args.into_iter();
    let command = match args.next().as_deref() {
        Some("setup") => Command::Setup,
        Some("doctor") => Command::Doctor,
        Some("keys") => Command::Keys,
        Some("help" | "--help" | "-h") | None => Command::Help,
        Some(other) => return Err(format!("unknown command `{other}` (see `agw help`)")),
    };
    let mut parsed = Args {
        command,
        config: PathBuf::from("gateway.config.json"),
        cache_ttl: None,
        keys_from_stdin: false,
        worker_url: None,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value =
            |flag: &str| inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match (command, name.as_str()) {
            (_, "--config") => parsed.config = PathBuf::from(value("--config")?),
            (Command::Setup, "--cache-ttl") => {
                let v = value("--cache-ttl")?;
                parsed.cache_ttl =
                    Some(v.parse().map_err(|_| format!("--cache-ttl: `{v}` is not a whole number of seconds"))?);
            }
            (Command::Setup, "--keys-from-stdin") if inline.is_none() => parsed.keys_from_stdin = true,
            (Command::Doctor, "--worker-url") => {
                let v = value("--worker-url")?;
                if !(v.starts_with("https://") || v.starts_with("http://")) {
                    return Err(format!("--worker-url: `{v}` is not an http(s) URL"));
                }
                parsed.worker_url = Some(v.trim_end_matches('/').to_owned());
            }
            (_, n) if looks_secret(n) => {
                return Err(format!(
                    "`{n}`: secrets are never taken as arguments (they end up in shell history and process \
                     lists); set them in the environment or pass keys on stdin (see `agw help`)"
                ))
            }
            _ => return Err(format!("unknown argument `{arg}` for this command (see `agw help`)")),
        }
    }
    Ok(parsed)
}

fn looks_secret(flag: &str) -> bool {
    let f = flag.to_ascii_lowercase();
    ["token", "key", "secret", "password"].iter().any(|w| f.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(args: &[&str]) -> Result<Args, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn commands_and_flags() {
        let a = parse_all(&["setup", "--config=x.json", "--cache-ttl", "600", "--keys-from-stdin"]).unwrap();
        assert_eq!(a.command, Command::Setup);
        assert_eq!(a.config, PathBuf::from("x.json"));
        assert_eq!(a.cache_ttl, Some(600));
        assert!(a.keys_from_stdin);
        let d = parse_all(&["doctor", "--worker-url", "http://127.0.0.1:8787/"]).unwrap();
        assert_eq!(d.worker_url.as_deref(), Some("http://127.0.0.1:8787"));
        assert_eq!(parse_all(&[]).unwrap().command, Command::Help);
    }

    #[test]
    fn secrets_are_refused_as_arguments() {
        for args in
            [&["setup", "--api-token", "x"][..], &["setup", "--openai-key=sk-x"][..], &["doctor", "--secret", "x"][..]]
        {
            let e = parse_all(args).unwrap_err();
            assert!(e.contains("never taken as arguments"), "{e}");
            assert!(!e.contains("sk-x"), "the value is not echoed");
        }
    }

    #[test]
    fn bad_arguments() {
        for args in [
            &["deploy"][..],
            &["doctor", "--cache-ttl", "5"][..],
            &["setup", "--cache-ttl", "soon"][..],
            &["setup", "--worker-url", "x"][..],
            &["doctor", "--worker-url", "ftp://x"][..],
            &["setup", "--config"][..],
        ] {
            assert!(parse_all(args).is_err(), "{args:?}");
        }
    }
}
