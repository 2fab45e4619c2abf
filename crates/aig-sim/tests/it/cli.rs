//! The binary: the `listening` line, flags, env, and a clean exit on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::client::*;

#[tokio::test]
async fn binary_announces_its_port_and_exits_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aig-sim"))
        .args(["--listen", "127.0.0.1:0", "--gateway-token", ""])
        .env("SIM_ACCOUNT_ID", "acct-from-env")
        .env("SIM_GATEWAY_TOKEN", "ignored-because-the-flag-wins")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line)).await.unwrap().unwrap();
    let announced: Value = serde_json::from_str(&line).unwrap();
    let addr: std::net::SocketAddr = announced["listening"].as_str().unwrap().parse().unwrap();
    assert_eq!(line, format!("{}\n", json!({"listening": addr.to_string()})));
    assert_ne!(addr.port(), 0);

    let chat = json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let r = post_json(
        addr,
        "/v1/acct-from-env/agent-gateway/compat/chat/completions",
        &[("authorization", "Bearer sk-secret-provider-key")],
        &chat,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "", "exactly one line on stdout");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(stderr.contains("POST /v1/acct-from-env/agent-gateway/compat/chat/completions 200 openai"), "{stderr}");
    assert!(!stderr.contains("sk-secret"), "tokens are never printed");
}

#[tokio::test]
async fn bad_flags_exit_with_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_aig-sim")).args(["--listen", "10.0.0.1:80"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    assert!(out.stdout.is_empty());
}
