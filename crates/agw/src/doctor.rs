//! `agw doctor`: checks a deployment end to end and says, for each problem, how to fix it.
//!
//! 1. the Cloudflare API takes CF_API_TOKEN and the gateway exists;
//! 2. the gateway is authenticated and collects logs;
//! 3. a provider key is stored for each provider a route uses;
//! 4. a one-token request to each model a route uses answers, as that model: through the Worker's
//!    native routes when `--worker-url` (and AGENT_TOKEN) are given, else straight to the gateway
//!    with CF_AIG_TOKEN. A model its provider retired, or one answered by another model (priced as
//!    that model), is named with what to change;
//! 5. the logs API reads.

use std::io::Write;

use serde_json::{json, Value};

use crate::api::{result, Cloudflare, Http, Reply};
use crate::env::{Deployment, Environment};

/// The report: one line per check, a fix under every failure.
struct Report<'a, W: Write> {
    out: &'a mut W,
    http: &'a Http,
    failures: u32,
}

impl<W: Write> Report<'_, W> {
    fn line(&mut self, mark: &str, what: &str, fix: Option<&str>) {
        let _ = writeln!(self.out, "{mark:<5} {}", self.http.clean(what));
        if let Some(fix) = fix {
            let _ = writeln!(self.out, "      fix: {}", self.http.clean(fix));
        }
    }
    fn ok(&mut self, what: &str) {
        self.line("ok", what, None);
    }
    fn warn(&mut self, what: &str, fix: &str) {
        self.line("warn", what, Some(fix));
    }
    fn fail(&mut self, what: &str, fix: &str) {
        self.failures += 1;
        self.line("FAIL", what, Some(fix));
    }
}

/// The path and body of a one-token request to `provider`'s native API, if the doctor knows one.
pub fn probe(provider: &str, model: &str) -> Option<(String, Value)> {
    let ping = json!([{"role": "user", "content": "ping"}]);
    Some(match provider {
        "openai" | "workers-ai" => {
            let path = if provider == "openai" { "openai/chat/completions" } else { "workers-ai/v1/chat/completions" };
            (path.to_owned(), json!({"model": model, "messages": ping, "max_tokens": 1}))
        }
        "anthropic" => ("anthropic/v1/messages".to_owned(), json!({"model": model, "messages": ping, "max_tokens": 1})),
        "google-ai-studio" => (
            format!("google-ai-studio/v1beta/models/{model}:generateContent"),
            json!({"contents": [{"parts": [{"text": "ping"}]}], "generationConfig": {"maxOutputTokens": 1}}),
        ),
        _ => return None,
    })
}

/// Runs every check; returns whether all passed.
pub fn run(env: &Environment, deployment: &Deployment, worker_url: Option<&str>, out: &mut impl Write) -> bool {
    let http = Http::new(env.secrets());
    let mut report = Report { out, http: &http, failures: 0 };
    let (gateways_url, id) = match env.gateway_api() {
        Ok(v) => v,
        Err(e) => {
            report.fail("account and gateway ids are not set", &e);
            return false;
        }
    };
    let Some(token) = env.api_token.as_ref() else {
        report.fail(
            "CF_API_TOKEN is not set",
            "export CF_API_TOKEN (a Cloudflare API token with AI Gateway Read and Edit on this account)",
        );
        return false;
    };
    let cf = Cloudflare { http: &http, gateways_url, token: token.expose().to_owned() };

    // 1–2. The gateway and its settings.
    let gateway = match cf.call("GET", &format!("/{id}"), None) {
        Ok(r) if r.status == 200 => result(&r),
        Ok(r) if r.status == 404 => {
            report.fail(&format!("gateway `{id}` does not exist ({})", r.message()), "run `agw setup` to create it");
            None
        }
        Ok(r) if matches!(r.status, 401 | 403) => {
            report.fail(
                &format!("the Cloudflare API refused CF_API_TOKEN ({})", r.message()),
                "use a token with AI Gateway Read and Edit on this account",
            );
            return false;
        }
        Ok(r) => {
            report.fail(
                &format!("reading gateway `{id}` failed ({})", r.message()),
                "check CF_API_URL and CF_ACCOUNT_ID",
            );
            None
        }
        Err(e) => {
            report.fail(&e, "check CF_API_URL and the network");
            return false;
        }
    };
    if let Some(g) = &gateway {
        report.ok(&format!("gateway `{id}` exists"));
        if g["authentication"] == true {
            report.ok("authentication is on (only holders of the gateway token can spend through it)");
        } else {
            report.fail(
                "authentication is off: anyone who knows the gateway URL can spend through it",
                "run `agw setup`",
            );
        }
        if g["collect_logs"] == true {
            report.ok("logs are collected");
        } else {
            report.fail("logs are off: /analytics and cost checks see nothing", "run `agw setup`");
        }
    }

    // 3. Stored keys per provider.
    let stored: Vec<Value> = match cf.call("GET", &format!("/{id}/provider_configs?per_page=100"), None) {
        Ok(r) => result(&r).and_then(|v| v.as_array().cloned()).unwrap_or_else(|| {
            if gateway.is_some() {
                report
                    .fail(&format!("listing stored keys failed ({})", r.message()), "check CF_API_TOKEN's permissions");
            }
            Vec::new()
        }),
        Err(e) => {
            report.fail(&e, "check CF_API_URL and the network");
            Vec::new()
        }
    };
    for (provider, model) in &deployment.providers {
        match stored.iter().find(|c| c["provider_slug"] == provider.as_str()) {
            Some(c) => report.ok(&format!(
                "{provider}: key stored ({})",
                c.get("secret_preview").and_then(Value::as_str).unwrap_or("…")
            )),
            None if gateway.is_none() => {}
            None => {
                let var = crate::keys::KEY_VARS.iter().find(|(p, _)| p == provider).map_or("KEY", |(_, v)| v[0]);
                let fix = format!(
                    "set {var} in the environment and run `agw setup` (or `agw setup --keys-from-stdin < keys.txt` \
                     with a line `{provider}=…`)"
                );
                if model.is_some() {
                    report.fail(&format!("{provider}: no key stored, and a route sends requests to it"), &fix);
                } else {
                    report.warn(
                        &format!("{provider}: no key stored (no route uses it; native calls to it would fail)"),
                        &fix,
                    );
                }
            }
        }
    }

    // 4. A one-token request through each provider a route uses.
    let via_worker = worker_url.map(|url| (url, env.agent_token.as_ref()));
    if let Some((url, token)) = via_worker {
        if token.is_none() {
            report
                .fail("--worker-url was given but AGENT_TOKEN is not set", "export AGENT_TOKEN (the Worker's secret)");
        }
        match http.send("GET", &format!("{url}/healthz"), &[], None) {
            Ok(r) if r.status == 200 => report.ok(&format!("the Worker at {url} is healthy")),
            Ok(r) => report.fail(
                &format!("the Worker at {url} is not healthy ({})", r.body.chars().take(300).collect::<String>()),
                "set what /healthz lists as missing or invalid (`npx wrangler secret put …`, wrangler.toml [vars])",
            ),
            Err(e) => report.fail(&e, "check --worker-url"),
        }
    } else if gateway.as_ref().is_some_and(|g| g["authentication"] == true) && env.aig_token.is_none() {
        report.fail(
            "CF_AIG_TOKEN is not set, so requests to the authenticated gateway cannot be tried",
            "export CF_AIG_TOKEN (the gateway's authentication token), or give --worker-url and AGENT_TOKEN",
        );
    }
    for (provider, model) in &deployment.targets {
        let Some((path, body)) = probe(provider, model) else { continue };
        if via_worker.is_none() && gateway.is_none() {
            continue; // Nothing to try straight to a gateway that is not there.
        }
        let (url, headers, through) = match via_worker {
            Some((url, token)) => {
                let Some(token) = token else { continue };
                (format!("{url}/{path}"), vec![("authorization", format!("Bearer {}", token.expose()))], "the Worker")
            }
            None => {
                let headers =
                    env.aig_token.iter().map(|t| ("cf-aig-authorization", format!("Bearer {}", t.expose()))).collect();
                (
                    format!("{}/{}/{id}/{path}", env.gateway_url, env.account_id.as_deref().unwrap_or("")),
                    headers,
                    "the gateway",
                )
            }
        };
        match http.send("POST", &url, &headers, Some(&body)) {
            Ok(r) if (200..300).contains(&r.status) => match answered_by(model, &r) {
                None => report.ok(&format!("{provider}/{model} answers through {through}")),
                Some(other) => report.warn(
                    &format!("{provider}/{model} is answered by {other} through {through} (priced as {other})"),
                    &format!(
                        "put {provider}/{other} in the routes of gateway.config.json instead, or keep it knowingly"
                    ),
                ),
            },
            Ok(r) if gateway_core::aig::answer::model_unavailable(r.status, r.body.as_bytes()) => report.fail(
                &format!("{provider}/{model} is no longer available: {}", r.message()),
                &format!(
                    "replace {provider}/{model} in the routes of gateway.config.json with a current model, then deploy"
                ),
            ),
            Ok(r) => {
                let fix = request_fix(provider, &r, via_worker.is_some());
                report.fail(&format!("{provider}/{model} through {through}: {}", r.message()), &fix);
            }
            Err(e) => report.fail(&e, if via_worker.is_some() { "check --worker-url" } else { "check AI_GATEWAY_URL" }),
        }
    }

    // 5. The logs API.
    if gateway.is_some() {
        match cf.call("GET", &format!("/{id}/logs?per_page=1"), None) {
            Ok(r) if r.status == 200 => {
                let total = r.json().and_then(|v| v["result_info"]["total_count"].as_u64());
                report.ok(&format!("the logs API reads ({} rows)", total.map_or("?".to_owned(), |n| n.to_string())));
            }
            Ok(r) => report.fail(
                &format!("the logs API does not read ({})", r.message()),
                "give CF_API_TOKEN AI Gateway Read; accounts on Workers Observability logs have no logs API",
            ),
            Err(e) => report.fail(&e, "check CF_API_URL"),
        }
    }

    let summary = match report.failures {
        0 => "all checks passed".to_owned(),
        n => format!("{n} check(s) failed"),
    };
    let _ = writeln!(report.out, "{summary}");
    report.failures == 0
}

/// The model that answered a probe, when its answer names another than `asked` (OpenAI and
/// Anthropic: `model`; Gemini: `modelVersion`).
fn answered_by(asked: &str, r: &Reply) -> Option<String> {
    let answer = r.json()?;
    let named = answer["model"].as_str().or_else(|| answer["modelVersion"].as_str());
    gateway_core::names::answered_by(asked, named)
}

/// What to do about a failed one-token request.
fn request_fix(provider: &str, r: &Reply, via_worker: bool) -> String {
    let code = r.json().and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    match (r.status, code.as_deref(), via_worker) {
        (401, _, true) => "AGENT_TOKEN is not the Worker's token".to_owned(),
        (502, Some("upstream_auth_failed"), true) => {
            "AI Gateway refuses the Worker's CF_AIG_TOKEN: `npx wrangler secret put CF_AIG_TOKEN`".to_owned()
        }
        (404, Some("not_found"), true) => {
            format!("add `{provider}` under providers in gateway.config.json, then deploy")
        }
        (429, Some("gateway_limits_exhausted"), true) => {
            "the Worker's own limits for this provider are used up; wait, or raise them".to_owned()
        }
        (401, _, false) => {
            "the gateway refuses CF_AIG_TOKEN: create a token under the gateway's Authentication settings".to_owned()
        }
        (404, _, false) => {
            "check AI_GATEWAY_URL, CF_ACCOUNT_ID and AI_GATEWAY_ID (`agw setup` creates the gateway)".to_owned()
        }
        _ => {
            format!("check the {provider} key stored in the gateway (`agw setup` stores one) and the provider's status")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_ask_for_one_token() {
        let (path, body) = probe("anthropic", "claude-haiku-4-5").unwrap();
        assert_eq!(path, "anthropic/v1/messages");
        assert_eq!(body["max_tokens"], 1);
        let (path, body) = probe("google-ai-studio", "gemini-2.5-flash").unwrap();
        assert_eq!(path, "google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 1);
        assert!(probe("aws-bedrock", "x").is_none());
    }

    #[test]
    fn fixes_name_the_cause() {
        let r = |status, body: &str| Reply { status, body: body.to_owned() };
        assert!(request_fix("openai", &r(401, "{}"), true).contains("AGENT_TOKEN"));
        assert!(request_fix("openai", &r(502, r#"{"error":{"code":"upstream_auth_failed"}}"#), true)
            .contains("CF_AIG_TOKEN"));
        assert!(request_fix("openai", &r(401, "{}"), false).contains("CF_AIG_TOKEN"));
        assert!(request_fix("openai", &r(400, "{}"), false).contains("openai key"));
    }
}
