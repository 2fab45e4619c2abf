//! The SSE relay (`relay::SseRelay`) and the framing under it (`sse::SseFramer`): upstream bytes
//! cut wherever the network cut them.

use gateway_core::relay::sse::{parse_event, SseFramer};
use gateway_core::relay::{SseRelay, StreamFault, StreamSummary, MAX_EVENT_BYTES};
use proptest::prelude::*;
use serde_json::json;

use crate::{cases, heavy_cases, hostile_bytes, split_at_points};

#[derive(Debug, Clone)]
enum Event {
    Role,
    Content(String),
    ToolCall(String),
    Comment(String),
    Usage(u32, u32),
    Finish(&'static str),
    /// A field the relay does not read (`id:`, `retry:`) next to the data.
    WithId(String),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => Just(Event::Role),
        6 => any::<String>().prop_map(Event::Content),
        1 => "[a-z_]{1,12}".prop_map(Event::ToolCall),
        1 => "[ -~]{0,20}".prop_map(Event::Comment),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(p, c)| Event::Usage(p, c)),
        1 => prop::sample::select(vec!["stop", "length", "content_filter"]).prop_map(Event::Finish),
        1 => "[a-z0-9]{1,8}".prop_map(Event::WithId),
    ]
}

/// The event's text with `eol` as its line terminator. Tool calls are OpenAI's own (one call at
/// index 0, its id and type on its first delta, `tool_calls` as the finish after it): a stream
/// already right for OpenAI clients, which the relay forwards untouched. `called` says whether a
/// tool call came before.
fn render(e: &Event, eol: &str, called: &mut bool) -> String {
    let data = |v: serde_json::Value| format!("data: {v}{eol}{eol}");
    match e {
        Event::Role => data(json!({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})),
        Event::Content(t) => data(json!({"choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]})),
        Event::ToolCall(n) if !std::mem::replace(called, true) => data(
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_0","type":"function","function":{"name":n,"arguments":""}}]}}]}),
        ),
        Event::ToolCall(n) => {
            data(json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":n}}]}}]}))
        }
        Event::Finish("stop") if *called => {
            data(json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}))
        }
        Event::Comment(c) => format!(":{c}{eol}{eol}"),
        Event::Usage(p, c) => data(
            json!({"choices":[],"usage":{"prompt_tokens":p,"completion_tokens":c,"total_tokens":*p as u64 + *c as u64}}),
        ),
        Event::Finish(r) => data(json!({"choices":[{"index":0,"delta":{},"finish_reason":r}]})),
        Event::WithId(id) => format!("id: {id}{eol}data: {}{eol}retry: 10{eol}{eol}", json!({"choices":[]})),
    }
}

/// A complete, valid stream (events, then `[DONE]`), each event framed with `\n`, `\r\n` or `\r`.
fn valid_stream() -> impl Strategy<Value = (Vec<Event>, Vec<u8>)> {
    prop::collection::vec((event(), prop::sample::select(vec!["\n", "\r\n", "\r"])), 0..12).prop_flat_map(|events| {
        prop::sample::select(vec!["\n", "\r\n", "\r"]).prop_map(move |done_eol| {
            let mut text = String::new();
            let mut called = false;
            for (e, eol) in &events {
                text.push_str(&render(e, eol, &mut called));
            }
            text.push_str(&format!("data: [DONE]{done_eol}{done_eol}"));
            (events.iter().map(|(e, _)| e.clone()).collect(), text.into_bytes())
        })
    })
}

fn relay(pieces: &[Vec<u8>]) -> (Vec<u8>, Result<(), StreamFault>, StreamSummary, usize) {
    let mut r = SseRelay::new();
    let mut out = Vec::new();
    let mut most_held = 0;
    for p in pieces {
        if let Err(e) = r.push(p, &mut out) {
            return (out, Err(e), r.summary().clone(), most_held);
        }
        most_held = most_held.max(r.buffered());
    }
    let res = r.finish(&mut out);
    (out, res, r.summary().clone(), most_held)
}

proptest! {
    #![proptest_config(cases(256))]

    /// However the network cuts a valid stream, the relay forwards it byte for byte and learns the
    /// same things from it.
    #[test]
    fn valid_streams_are_relayed_byte_exact((events, stream) in valid_stream(), cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let whole = relay(std::slice::from_ref(&stream));
        let pieces = split_at_points(&stream, &cuts);
        let (out, res, summary, _) = relay(&pieces);
        prop_assert_eq!(&res, &Ok(()));
        prop_assert_eq!(&out, &stream);
        prop_assert_eq!(&summary, &whole.2);
        prop_assert!(summary.done);
        let content = events.iter().any(|e| match e {
            Event::Content(t) => !t.is_empty(),
            Event::ToolCall(_) => true,
            _ => false,
        });
        prop_assert_eq!(summary.saw_content, content);
        let last_usage = events.iter().rev().find_map(|e| match e { Event::Usage(p, c) => Some((*p as u64, *c as u64)), _ => None });
        prop_assert_eq!(summary.usage.map(|u| (u.prompt_tokens.known(), u.completion_tokens.known())), last_usage.map(|(p, c)| (Some(p), Some(c))));
    }

    /// A stream cut anywhere is never taken for a complete one, and what was forwarded is whole
    /// events only.
    #[test]
    fn cut_streams_are_truncated((_, stream) in valid_stream(), at in any::<usize>(), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let done_at = stream.windows(12).rposition(|w| w == b"data: [DONE]").unwrap();
        let cut = at % (done_at + 1);
        let (out, res, summary, _) = relay(&split_at_points(&stream[..cut], &cuts));
        prop_assert_eq!(res, Err(StreamFault::Truncated));
        prop_assert!(!summary.done);
        prop_assert!(stream.starts_with(&out));
        // What was forwarded is complete events only: relayed again, all of it goes through.
        let (again, _, _, _) = relay(std::slice::from_ref(&out));
        prop_assert_eq!(again, out);
    }

    /// Arbitrary bytes: no panic, the buffer stays bounded, and whatever was forwarded is a prefix
    /// of the input (complete events, in order, unchanged).
    #[test]
    fn arbitrary_bytes_never_panic(data in hostile_bytes(2000), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let (out, _, _, most_held) = relay(&split_at_points(&data, &cuts));
        prop_assert!(data.starts_with(&out));
        prop_assert!(most_held <= MAX_EVENT_BYTES);
    }

    /// The framer cuts events the same way whatever the chunking, and each event it hands out
    /// parses.
    #[test]
    fn framing_does_not_depend_on_chunking(data in hostile_bytes(1500), cuts in prop::collection::vec(any::<usize>(), 0..30)) {
        let collect = |pieces: &[Vec<u8>]| {
            let mut f = SseFramer::new();
            let mut events: Vec<Vec<u8>> = Vec::new();
            for p in pieces {
                f.push(p, false, |e| { events.push(e.to_vec()); Ok::<(), ()>(()) }).unwrap();
            }
            f.push(&[], true, |e| { events.push(e.to_vec()); Ok::<(), ()>(()) }).unwrap();
            (events, f.pending())
        };
        let whole = collect(std::slice::from_ref(&data));
        let split = collect(&split_at_points(&data, &cuts));
        prop_assert_eq!(&split, &whole);
        let joined: Vec<u8> = split.0.concat();
        prop_assert!(data.starts_with(&joined));
        for e in &split.0 {
            let _ = parse_event(e);
        }
    }
}

proptest! {
    // Each case pushes over a megabyte: a few are enough to show the bound holds.
    #![proptest_config(heavy_cases(6))]

    /// An event that never ends is refused once it passes the bound, however it arrives.
    #[test]
    fn endless_event_is_refused_at_the_bound(chunk in 1000usize..200_000, byte in prop::sample::select(b"a: {\"x".to_vec())) {
        let mut r = SseRelay::new();
        let mut out = Vec::new();
        let piece = vec![byte; chunk];
        let mut sent = 0;
        let res = loop {
            if let Err(e) = r.push(&piece, &mut out) {
                break e;
            }
            prop_assert!(r.buffered() <= MAX_EVENT_BYTES);
            sent += chunk;
            prop_assert!(sent <= MAX_EVENT_BYTES + chunk, "held {} bytes without refusing", sent);
        };
        prop_assert_eq!(res, StreamFault::Oversized);
        prop_assert!(out.is_empty());
    }
}
