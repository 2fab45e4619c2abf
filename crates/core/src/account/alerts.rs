//! Warnings before the money runs out: when a provider's, repository's, owner's or agent's spend
//! crosses 50% and 80% of its daily budget, and when the budget first refuses a request (100%),
//! the limiter says so once per threshold per day ([`crate::account::limits::ALERT_THRESHOLDS`]),
//! and the Worker posts it to `ALERT_WEBHOOK_URL`.
//!
//! The body carries the message as `text` (Slack's incoming webhooks) and `content` (Discord's),
//! so one URL of either works, plus the figures as fields of their own for anything else.

use serde::{Deserialize, Serialize};

use crate::account::limits::UnavailableModel;
use crate::money::pricing::Usd;

/// One threshold crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The limiter's name: a provider (`google-ai-studio`) or a scope (`repository:owner/name`).
    pub limiter: String,
    pub threshold_percent: u32,
    pub spent_usd: Usd,
    pub daily_budget_usd: Usd,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Set when the alert is of a model the provider answered is not available (then
    /// `threshold_percent` is 0, and the spend figures are the day's as they stand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_unavailable: Option<UnavailableModel>,
}

impl Alert {
    /// What a person reads.
    pub fn message(&self) -> String {
        let what = match self.limiter.split_once(':') {
            Some((kind, name)) => format!("{kind} `{name}`"),
            None => format!("provider `{}`", self.limiter),
        };
        if let Some(mark) = &self.model_unavailable {
            return format!(
                "agent-gateway: the {what} answered that model `{}` is not available ({}): requests skip it until {} and go to their next target.",
                mark.model,
                mark.reason,
                crate::time::format_ms(mark.until_ms as i64)
            );
        }
        if self.threshold_percent >= 100 {
            format!(
                "agent-gateway: the {what} has used its daily budget of ${} ({}): requests over it are refused until 00:00 UTC (spent ${}).",
                self.daily_budget_usd, self.day, self.spent_usd
            )
        } else {
            format!(
                "agent-gateway: the {what} has spent ${} of its ${} daily budget ({}% crossed, {}).",
                self.spent_usd, self.daily_budget_usd, self.threshold_percent, self.day
            )
        }
    }

    /// The webhook's JSON body.
    pub fn webhook_body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            text: &'a str,
            content: &'a str,
            #[serde(flatten)]
            alert: &'a Alert,
        }
        let message = self.message();
        serde_json::to_string(&Body { text: &message, content: &message, alert: self }).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_and_discord_read_the_same_body() {
        let alert = Alert {
            limiter: "repository:octo-org/app".into(),
            threshold_percent: 80,
            spent_usd: Usd::parse_dollars("1.6").unwrap(),
            daily_budget_usd: Usd::from_dollars(2),
            day: "2026-12-02".into(),
            model_unavailable: None,
        };
        let body: serde_json::Value = crate::json::from_str(&alert.webhook_body()).unwrap();
        let text = body["text"].as_str().unwrap();
        assert_eq!(text, body["content"].as_str().unwrap());
        assert!(text.contains("repository `octo-org/app`") && text.contains("$1.6 of its $2") && text.contains("80%"));
        assert_eq!(body["threshold_percent"], 80);
        assert_eq!(body["spent_usd"].to_string(), "1.6", "exact decimal, not a float's digits");
        let full = Alert { limiter: "openai".into(), threshold_percent: 100, ..alert };
        assert!(full.message().contains("provider `openai` has used its daily budget"));
        let gone = Alert {
            model_unavailable: Some(UnavailableModel {
                model: "gpt-4-32k".into(),
                reason: "does not exist".into(),
                until_ms: 3_600_000,
            }),
            threshold_percent: 0,
            ..full
        };
        let body: serde_json::Value = crate::json::from_str(&gone.webhook_body()).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("model `gpt-4-32k` is not available (does not exist)") && text.contains("1970-01-01T01:00"),
            "{text}"
        );
        assert_eq!(body["model_unavailable"]["model"], "gpt-4-32k");
    }
}
