//! `agw`: exit code 0 when all went well, 1 when something failed, 2 for a usage error.

use std::io::Read;
use std::process::ExitCode;

use agw::args::{self, Command};
use agw::env::{Deployment, Environment};
use agw::{doctor, keys, setup};
use serde_json::Value;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("agw: {message}");
            return ExitCode::from(2);
        }
    };
    if args.command == Command::Help {
        print!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let lookup = |name: &str| std::env::var(name).ok();
    let env = Environment::read(&lookup);
    let deployment = match Deployment::from_file(&args.config) {
        Ok(d) => d,
        Err(message) => {
            eprintln!("agw: {message}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let outcome = match args.command {
        Command::Setup => {
            let stdin_keys = if args.keys_from_stdin {
                let mut text = String::new();
                if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                    eprintln!("agw: cannot read stdin: {e}");
                    return ExitCode::FAILURE;
                }
                match keys::from_lines(&text) {
                    Ok(k) => k,
                    Err(message) => {
                        eprintln!("agw: {message}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                Vec::new()
            };
            let all = keys::merge(keys::from_env(&lookup), stdin_keys);
            setup::run(&env, &deployment, args.cache_ttl, all, &mut out)
        }
        Command::Doctor => {
            if doctor::run(&env, &deployment, args.worker_url.as_deref(), &mut out) {
                Ok(())
            } else {
                Err(String::new())
            }
        }
        Command::Keys => list_keys(&env, &mut out),
        Command::Help => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) if message.is_empty() => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("agw: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `agw keys`: the stored provider keys, previews only.
fn list_keys(env: &Environment, out: &mut impl std::io::Write) -> Result<(), String> {
    let (gateways_url, id) = env.gateway_api()?;
    let token = env.api_token.as_ref().ok_or("CF_API_TOKEN must be set")?;
    let http = agw::api::Http::new(env.secrets());
    let cf = agw::api::Cloudflare { http: &http, gateways_url, token: token.expose().to_owned() };
    let r = cf.call("GET", &format!("/{id}/provider_configs?per_page=100"), None)?;
    let items = agw::api::result(&r).ok_or_else(|| format!("listing stored keys: {}", r.message()))?;
    let items = items.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        writeln!(out, "no provider keys stored in gateway {id}").map_err(|e| e.to_string())?;
    }
    for c in items {
        let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        writeln!(out, "{:<18} alias {:<10} {}", field("provider_slug"), field("alias"), field("secret_preview"))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
