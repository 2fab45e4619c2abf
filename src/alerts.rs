//! Budget alerts (`gateway_core::account::alerts`) posted to the optional `ALERT_WEBHOOK_URL`
//! secret, always after the response (`waitUntil`): a delivery that fails is retried twice in
//! the background, then logged. The URL is a credential (Slack's and Discord's carry their token
//! in it): it is never logged, and error texts are redacted of it.

use std::time::Duration;

use futures_util::future::{join_all, select, Either};

use gateway_core::account::alerts::Alert;
use gateway_core::error::redact;
use worker::{Delay, Env, Fetch, Headers, Method, Request, RequestInit};

/// The longest one delivery attempt may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Posts each alert (nothing when there are none or no webhook is configured).
pub async fn post(env: &Env, alerts: Vec<Alert>) {
    if alerts.is_empty() {
        return;
    }
    let Some(url) = env.secret("ALERT_WEBHOOK_URL").ok().map(|s| s.to_string()).filter(|u| !u.is_empty()) else {
        for alert in &alerts {
            let line = serde_json::json!({"event": "budget_alert", "delivered": false, "alert": alert});
            worker::console_log!("{line}");
        }
        return;
    };
    // Each alert on its own (a provider's and its scopes' may cross at once), each send bounded.
    join_all(alerts.into_iter().map(|alert| deliver(&url, alert))).await;
}

async fn deliver(url: &str, alert: Alert) {
    let body = alert.webhook_body();
    let mut last = String::new();
    let mut delivered = false;
    for delay_ms in [0, 1_000, 5_000] {
        if delay_ms > 0 {
            Delay::from(Duration::from_millis(delay_ms)).await;
        }
        let sent = select(Box::pin(send(url, &body)), Delay::from(SEND_TIMEOUT)).await;
        let sent = match sent {
            Either::Left((sent, _)) => sent,
            Either::Right(_) => Err(worker::Error::RustError("no answer within 10 s".into())),
        };
        match sent {
            Ok(status) if (200..300).contains(&status) => {
                delivered = true;
                break;
            }
            Ok(status) => last = format!("status {status}"),
            Err(e) => last = redact(&e.to_string(), &[url]),
        }
    }
    let line = serde_json::json!({
        "event": "budget_alert",
        "delivered": delivered,
        "error": (!delivered).then_some(last),
        "alert": alert,
    });
    worker::console_log!("{line}");
}

async fn send(url: &str, body: &str) -> worker::Result<u16> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
    let response = Fetch::Request(Request::new_with_init(url, &init)?).send().await?;
    Ok(response.status_code())
}
