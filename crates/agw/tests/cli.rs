//! `agw` against the AI Gateway simulator: `setup` creates and configures a gateway and stores
//! keys (from stdin and the environment, never printed), `doctor` finds what is wrong and says
//! how to fix it, then passes once it is fixed. The binary runs as an operator would run it.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::Value;

const ACCOUNT: &str = "ops-account";
const GATEWAY_TOKEN: &str = "gw-token-0123456789";
const API_TOKEN: &str = "api-token-0123456789";
const OPENAI_KEY: &str = "sk-openai-secret-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-secret-0123456789";
const GEMINI_KEY: &str = "gemini-secret-0123456789";

/// A simulator on a free port, running on its own thread for the whole test.
fn start_sim() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let config = aig_sim::Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                account_id: ACCOUNT.into(),
                gateway_id: "existing-gw".into(),
                gateway_token: GATEWAY_TOKEN.into(),
                api_token: API_TOKEN.into(),
                chunk_delay_ms: 0,
                ..aig_sim::Config::default()
            };
            let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            aig_sim::serve(listener, config, std::future::pending::<()>()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn agw(sim: SocketAddr, gateway: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../gateway.config.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_agw"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("CF_ACCOUNT_ID", ACCOUNT)
        .env("AI_GATEWAY_ID", gateway)
        .env("CF_API_URL", format!("http://{sim}/client/v4"))
        .env("AI_GATEWAY_URL", format!("http://{sim}/v1"))
        .env("CF_API_TOKEN", API_TOKEN)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [GATEWAY_TOKEN, API_TOKEN, OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

fn get(sim: SocketAddr, path: &str) -> Value {
    let body = ureq::get(&format!("http://{sim}{path}"))
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

#[test]
fn setup_creates_a_gateway_and_doctor_checks_it() {
    let sim = start_sim();
    let gw = "ops-gw";

    // Before setup: the doctor says the gateway is missing, and how to fix it.
    let before = agw(sim, gw, &["doctor"], &[("CF_AIG_TOKEN", GATEWAY_TOKEN)], "");
    assert_eq!(before.code, 1, "{}", before.stdout);
    assert!(before.stdout.contains("FAIL  gateway `ops-gw` does not exist"), "{}", before.stdout);
    assert!(before.stdout.contains("fix: run `agw setup`"), "{}", before.stdout);

    // Setup: keys from stdin and from the environment.
    let setup = agw(
        sim,
        gw,
        &["setup", "--keys-from-stdin"],
        &[("GEMINI_API_KEY", GEMINI_KEY)],
        &format!("# keys\nopenai={OPENAI_KEY}\nanthropic={ANTHROPIC_KEY}\n"),
    );
    assert_eq!(setup.code, 0, "{}{}", setup.stdout, setup.stderr);
    // The cache TTL is the longest one a route of the configuration asks for.
    let ttl = agw::env::Deployment::from_json(include_str!("../../../gateway.config.json")).unwrap().cache_ttl;
    assert!(ttl >= 60);
    let created = format!("gateway ops-gw: created (authentication on, logs on, cache TTL {ttl} s)");
    assert!(setup.stdout.contains(&created), "{}", setup.stdout);
    for p in ["openai", "anthropic", "google-ai-studio"] {
        assert!(setup.stdout.contains(&format!("key {p}: stored")), "{}", setup.stdout);
    }
    let g = &get(sim, &format!("/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/{gw}"))["result"];
    assert_eq!(g["authentication"], true);
    assert_eq!(g["collect_logs"], true);
    assert_eq!(g["cache_ttl"], ttl);
    let keys = get(sim, &format!("/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/{gw}/provider_configs"));
    let mut slugs: Vec<&str> =
        keys["result"].as_array().unwrap().iter().map(|k| k["provider_slug"].as_str().unwrap()).collect();
    slugs.sort();
    assert_eq!(slugs, ["anthropic", "google-ai-studio", "openai"]);

    // Again: nothing to change, keys left alone.
    let again = agw(sim, gw, &["setup"], &[("OPENAI_API_KEY", OPENAI_KEY)], "");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("already as needed"), "{}", again.stdout);
    assert!(again.stdout.contains("key openai: already stored"), "{}", again.stdout);

    // The doctor now passes: gateway, auth, logs, keys, a one-token request per provider, logs API.
    let doctor = agw(sim, gw, &["doctor"], &[("CF_AIG_TOKEN", GATEWAY_TOKEN)], "");
    assert_eq!(doctor.code, 0, "{}", doctor.stdout);
    for line in [
        "ok    gateway `ops-gw` exists",
        "ok    authentication is on",
        "ok    openai: key stored",
        "ok    google-ai-studio/gemini-3.5-flash-lite answers through the gateway",
        "ok    anthropic/claude-haiku-4-5 answers through the gateway",
        "ok    the logs API reads",
        "all checks passed",
    ] {
        assert!(doctor.stdout.contains(line), "missing {line:?} in\n{}", doctor.stdout);
    }
    // Providers no route uses only warn.
    assert!(doctor.stdout.contains("warn  aws-bedrock: no key stored"), "{}", doctor.stdout);

    // `agw keys` lists previews only.
    let keys = agw(sim, gw, &["keys"], &[], "");
    assert_eq!(keys.code, 0);
    assert!(keys.stdout.contains("openai") && keys.stdout.contains("sk-o…"), "{}", keys.stdout);
}

#[test]
fn doctor_names_each_problem_and_its_fix() {
    let sim = start_sim();
    let gw = "broken-gw";
    // A gateway that is unauthenticated, keeps no logs and has no keys.
    let created = ureq::post(&format!("http://{sim}/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways"))
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .content_type("application/json")
        .send(
            serde_json::json!({"id": gw, "cache_ttl": 0, "cache_invalidate_on_update": false, "collect_logs": false,
                "rate_limiting_interval": 0, "rate_limiting_limit": 0, "authentication": false})
            .to_string(),
        )
        .unwrap();
    assert_eq!(created.status(), 200);

    let d = agw(sim, gw, &["doctor"], &[("CF_AIG_TOKEN", "not-the-gateway-token")], "");
    assert_eq!(d.code, 1);
    for line in [
        "FAIL  authentication is off",
        "FAIL  logs are off",
        "FAIL  openai: no key stored, and a route sends requests to it",
        "fix: set OPENAI_API_KEY in the environment and run `agw setup`",
    ] {
        assert!(d.stdout.contains(line), "missing {line:?} in\n{}", d.stdout);
    }

    // A wrong API token is named as such.
    let d = agw(sim, gw, &["doctor"], &[("CF_API_TOKEN", "wrong")], "");
    assert_eq!(d.code, 1);
    assert!(d.stdout.contains("the Cloudflare API refused CF_API_TOKEN"), "{}", d.stdout);

    // Setup fixes it; a wrong gateway token is still caught by the one-token requests.
    assert_eq!(agw(sim, gw, &["setup"], &[("OPENAI_API_KEY", OPENAI_KEY)], "").code, 0);
    let d = agw(sim, gw, &["doctor"], &[("CF_AIG_TOKEN", "not-the-gateway-token")], "");
    assert_eq!(d.code, 1);
    assert!(d.stdout.contains("ok    authentication is on"), "{}", d.stdout);
    assert!(d.stdout.contains("FAIL  openai/gpt-4o-mini through the gateway: HTTP 401"), "{}", d.stdout);
    assert!(d.stdout.contains("the gateway refuses CF_AIG_TOKEN"), "{}", d.stdout);

    // Every routed model is asked once: one its provider retired fails, one answered by another
    // model warns (it is priced as that model).
    let rules = serde_json::json!({"retired": ["gemini-3.5-flash-lite"], "redirects": {"gpt-4o-mini": "gpt-4o"}});
    let set =
        ureq::post(&format!("http://{sim}/__sim/models")).content_type("application/json").send(rules.to_string());
    assert_eq!(set.unwrap().status(), 200);
    let d = agw(sim, gw, &["doctor"], &[("CF_AIG_TOKEN", GATEWAY_TOKEN)], "");
    assert_eq!(d.code, 1);
    for line in [
        "FAIL  google-ai-studio/gemini-3.5-flash-lite is no longer available",
        "fix: replace google-ai-studio/gemini-3.5-flash-lite in the routes of gateway.config.json",
        "warn  openai/gpt-4o-mini is answered by gpt-4o through the gateway (priced as gpt-4o)",
        "ok    anthropic/claude-haiku-4-5 answers through the gateway",
        "ok    openai/gpt-4o answers through the gateway",
    ] {
        assert!(d.stdout.contains(line), "missing {line:?} in\n{}", d.stdout);
    }
}

#[test]
fn secrets_are_never_arguments() {
    let sim = start_sim();
    let r = agw(sim, "x", &["setup", "--openai-key", OPENAI_KEY], &[], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("never taken as arguments"), "{}", r.stderr);
    let r = agw(sim, "x", &["setup", "--keys-from-stdin"], &[], &format!("groq={OPENAI_KEY}\n"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a provider"), "{}", r.stderr);
}
