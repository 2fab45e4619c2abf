//! Sending a body over time, and breaking it on purpose.
//!
//! A wire format describes a streamed answer as a [`StreamPlan`]: the events before the content
//! (`head`), one event per content piece, the events after it (`tail`), and what to send after
//! `head` when the stream must be malformed. [`spawn`] sends a plan event by event from a task
//! through a channel body, so each event is its own write on the connection, and implements the
//! stream faults on top of the same plan, whatever the format.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::http::{BodyAbort, SimBody};

/// How long "never" lasts for the stall faults: long enough for any client timeout, short enough
/// that a forgotten stalled connection does not live forever.
pub const STALL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Default)]
pub struct StreamPlan {
    pub head: Vec<Bytes>,
    pub content: Vec<Bytes>,
    pub tail: Vec<Bytes>,
    /// Sent after `head` instead of the content in [`Mode::Malformed`].
    pub malformed: Vec<Bytes>,
}

impl StreamPlan {
    /// A single pre-rendered body seen as a two-event "stream", so the cut/stall faults can hit
    /// non-streamed answers too (the first half is the "first chunk").
    pub fn split_body(body: &[u8]) -> Self {
        let mid = body.len() / 2;
        StreamPlan {
            head: Vec::new(),
            content: vec![Bytes::copy_from_slice(&body[..mid])],
            tail: vec![Bytes::copy_from_slice(&body[mid..])],
            malformed: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Head and first content event, then silence.
    StallAfterFirst,
    /// Nothing, then a broken connection.
    CutBeforeFirst,
    /// Head and first content event, then a broken connection.
    CutAfterFirst,
    /// Head, then `malformed`.
    Malformed,
    /// Head and first content event, then these bytes, then a clean end.
    InjectAfterFirst(Bytes),
    /// Head, then a clean end (no content, no tail).
    EndBeforeFirst,
    /// Head and first content event, then a clean end (no tail).
    EndAfterFirst,
}

/// Starts sending `plan` in `mode` with `delay` between events; returns the body to answer with.
pub fn spawn(plan: StreamPlan, mode: Mode, delay: Duration) -> SimBody {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let head_len = plan.head.len();
        let first = head_len + plan.content.len().min(1);
        let mut events = plan.head;
        events.extend(plan.content);
        let events: Vec<Bytes> = match &mode {
            Mode::Normal => {
                events.extend(plan.tail);
                events
            }
            Mode::StallAfterFirst | Mode::CutAfterFirst | Mode::EndAfterFirst => {
                events.truncate(first);
                events
            }
            Mode::EndBeforeFirst => {
                events.truncate(head_len);
                events
            }
            Mode::CutBeforeFirst => Vec::new(),
            Mode::Malformed => {
                events.truncate(head_len);
                events.extend(plan.malformed);
                events
            }
            Mode::InjectAfterFirst(bytes) => {
                events.truncate(first);
                events.push(bytes.clone());
                events
            }
        };
        for (i, event) in events.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(Ok(event)).await.is_err() {
                return; // The client went away.
            }
        }
        match mode {
            Mode::Normal | Mode::Malformed | Mode::InjectAfterFirst(_) | Mode::EndBeforeFirst | Mode::EndAfterFirst => {
            }
            Mode::StallAfterFirst => {
                // Hold the body open until the client gives up (or STALL passes).
                tokio::select! {
                    _ = tokio::time::sleep(STALL) => {}
                    _ = tx.closed() => return,
                }
                let _ = tx.send(Err(BodyAbort("stall ended"))).await;
            }
            Mode::CutBeforeFirst | Mode::CutAfterFirst => {
                // Give hyper a moment to flush the headers and what was sent, so the client
                // really sees a 200 followed by a broken body.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(Err(BodyAbort("simulated connection cut"))).await;
            }
        }
    });
    SimBody::Channel(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body;
    use std::pin::Pin;

    fn plan() -> StreamPlan {
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        StreamPlan {
            head: vec![b("h")],
            content: vec![b("c1"), b("c2")],
            tail: vec![b("t")],
            malformed: vec![b("m"), b("d")],
        }
    }

    async fn collect(mut body: SimBody) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return (out, false),
                Some(Err(_)) => return (out, true),
                Some(Ok(f)) => out.push(String::from_utf8_lossy(&f.into_data().unwrap()).into()),
            }
        }
    }

    #[tokio::test]
    async fn modes() {
        let z = Duration::ZERO;
        assert_eq!(
            collect(spawn(plan(), Mode::Normal, z)).await,
            (vec!["h".into(), "c1".into(), "c2".into(), "t".into()], false)
        );
        assert_eq!(collect(spawn(plan(), Mode::CutAfterFirst, z)).await, (vec!["h".into(), "c1".into()], true));
        assert_eq!(collect(spawn(plan(), Mode::CutBeforeFirst, z)).await, (vec![], true));
        assert_eq!(collect(spawn(plan(), Mode::Malformed, z)).await, (vec!["h".into(), "m".into(), "d".into()], false));
        assert_eq!(collect(spawn(plan(), Mode::EndBeforeFirst, z)).await, (vec!["h".into()], false));
        assert_eq!(collect(spawn(plan(), Mode::EndAfterFirst, z)).await, (vec!["h".into(), "c1".into()], false));
    }
}
