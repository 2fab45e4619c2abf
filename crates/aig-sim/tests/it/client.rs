//! A tiny HTTP/1.1 client over a raw `TcpStream`, enough to see exactly what the simulator sends:
//! chunk boundaries, broken connections and missing headers included.

use std::net::SocketAddr;
use std::time::Duration;

use aig_sim::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const ACCOUNT: &str = "local-account";
pub const GATEWAY: &str = "agent-gateway";
pub const GATEWAY_AUTH: (&str, &str) = ("cf-aig-authorization", "Bearer sim-gateway-token");
pub const API_AUTH: (&str, &str) = ("authorization", "Bearer sim-api-token");

/// A simulator running in this test's runtime; stops when dropped.
pub struct Sim {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn start() -> Sim {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Sim {
    let mut config = Config { listen: "127.0.0.1:0".parse().unwrap(), chunk_delay_ms: 0, ..Config::default() };
    configure(&mut config);
    let listener = TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(aig_sim::serve(listener, config, async {
        let _ = stopped.await;
    }));
    Sim { addr, _stop: stop }
}

pub fn compat_path() -> String {
    format!("/v1/{ACCOUNT}/{GATEWAY}/compat/chat/completions")
}

pub fn native_path(rest: &str) -> String {
    format!("/v1/{ACCOUNT}/{GATEWAY}/{rest}")
}

pub fn v4_path(rest: &str) -> String {
    format!("/client/v4/accounts/{ACCOUNT}/{rest}")
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body ended properly (final chunk / full length), not by a broken connection.
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// SSE events as (event name, data).
    pub fn events(&self) -> Vec<(Option<String>, String)> {
        parse_sse(&self.text())
    }
}

pub fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let mut name = None;
            let mut data = String::new();
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

/// Writes a request and returns the open connection.
pub async fn open(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream
}

/// Reads for at most `limit`; returns the bytes and whether the connection ended (EOF or error).
pub async fn read_for(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (data, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (data, true),
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends a request and reads the whole reply (the simulator closes after it: `connection: close`).
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = open(addr, method, path, headers, body).await;
    let (data, ended) = read_for(&mut stream, Duration::from_secs(20)).await;
    assert!(ended, "no complete reply within 20 s: {}", String::from_utf8_lossy(&data));
    parse_reply(&data).unwrap_or_else(|| panic!("no HTTP reply: {:?}", String::from_utf8_lossy(&data)))
}

pub async fn post_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    send(addr, "POST", path, &h, &body.to_string()).await
}

pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, "GET", path, headers, "").await
}

/// Parses status, headers and body, decoding a chunked body.
pub fn parse_reply(data: &[u8]) -> Option<Reply> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&data[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &data[end + 4..];
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (body, complete) = if find("transfer-encoding").as_deref() == Some("chunked") {
        decode_chunked(rest)
    } else if let Some(len) = find("content-length").and_then(|l| l.parse::<usize>().ok()) {
        (rest[..len.min(rest.len())].to_vec(), rest.len() >= len)
    } else {
        (rest.to_vec(), true)
    };
    Some(Reply { status, headers, body, complete })
}

/// Decodes what there is of a chunked body; `complete` only if the final `0` chunk arrived.
pub fn decode_chunked(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap_or("");
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return (body, false);
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..size.min(rest.len())]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Queues a fault through the control API.
pub async fn fault(addr: SocketAddr, provider: &str, times: u32, fault: Value) {
    let r = post_json(
        addr,
        "/__sim/faults",
        &[],
        &serde_json::json!({"provider": provider, "times": times, "fault": fault}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

pub async fn requests(addr: SocketAddr) -> Vec<Value> {
    match get(addr, "/__sim/requests", &[]).await.json() {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

/// The v4 logs list for the configured gateway.
pub async fn logs(addr: SocketAddr, query: &str) -> Reply {
    get(addr, &format!("{}?{query}", v4_path(&format!("ai-gateway/gateways/{GATEWAY}/logs"))), &[API_AUTH]).await
}
