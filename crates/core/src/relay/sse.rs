//! Server-sent events framing, shared by every stream observer: where lines and events end
//! (`\n`, `\r\n` or `\r`, as the SSE spec allows), and what one complete event says (its `event:`
//! name and its `data:` lines joined).
//!
//! The OpenAI relay ([`crate::relay`]) and the provider-native observers ([`crate::native`]) read
//! different JSON inside the events, but the framing is the same, so it lives here once.

/// The next complete line starting at `from`: `(end of its content, start of the next line)`.
/// A `\r` at the very end of the buffer is not yet a terminator: a `\n` may follow in the next
/// chunk, and `\r\n` is one terminator, not two — unless the stream has ended (`at_end`).
pub(crate) fn next_line(buf: &[u8], from: usize, at_end: bool) -> Option<(usize, usize)> {
    let rel = buf[from..].iter().position(|&b| b == b'\n' || b == b'\r')?;
    let at = from + rel;
    match buf[at] {
        b'\n' => Some((at, at + 1)),
        _ if at + 1 == buf.len() => at_end.then_some((at, at + 1)),
        _ if buf[at + 1] == b'\n' => Some((at, at + 2)),
        _ => Some((at, at + 1)),
    }
}

/// The non-empty lines of one complete event, without terminators.
pub(crate) fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (end, next) =
            next_line(event, at, true).or_else(|| (at < event.len()).then_some((event.len(), event.len())))?;
        let line = &event[at..end];
        at = next;
        Some(line)
    })
    .filter(|l| !l.is_empty())
}

/// What one complete event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field (empty when absent).
    pub name: &'a [u8],
    /// The `data:` lines joined with `\n`; `None` when the event has none (a comment, a `retry:`).
    pub data: Option<Vec<u8>>,
}

/// Reads the fields of one complete event (raw bytes, framing included).
pub fn parse_event(raw: &[u8]) -> SseEvent<'_> {
    let mut data: Vec<&[u8]> = Vec::new();
    let mut name: &[u8] = b"";
    for line in lines(raw) {
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => continue, // a comment (keep-alive)
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => data.push(value),
            b"event" => name = value,
            _ => {}
        }
    }
    SseEvent { name, data: (!data.is_empty()).then(|| data.join(&b'\n')) }
}

/// Where the value of an event's only `data:` line is, in `raw`; `None` when it has no or
/// several `data:` lines (then its payload is not one contiguous run of bytes).
pub fn single_data_span(raw: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut found = None;
    for line in lines(raw) {
        if let Some(rest) = line.strip_prefix(b"data:") {
            if found.is_some() {
                return None;
            }
            let value = rest.strip_prefix(b" ").unwrap_or(rest);
            let start = value.as_ptr() as usize - raw.as_ptr() as usize;
            found = Some(start..start + value.len());
        }
    }
    found
}

/// Incremental event splitter: feed it chunks as the network cut them, get back complete events
/// (their exact bytes, framing included), in order.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: Vec<u8>,
    /// Start of the event being assembled, in `buf`.
    event_start: usize,
    /// Where line scanning resumes, in `buf`.
    scan: usize,
}

impl SseFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `chunk` and hands each event it completed to `on_event`, stopping at the first
    /// error. With `at_end`, a trailing `\r` counts as a terminator (the body is over).
    pub fn push<E>(
        &mut self,
        chunk: &[u8],
        at_end: bool,
        mut on_event: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.buf.extend_from_slice(chunk);
        let result = loop {
            let Some((line_end, next)) = next_line(&self.buf, self.scan, at_end) else { break Ok(()) };
            self.scan = next;
            let head = &self.buf[self.event_start..line_end];
            let line_start = match head.iter().rposition(|&b| b == b'\n' || b == b'\r') {
                Some(i) => self.event_start + i + 1,
                None => self.event_start,
            };
            if line_end == line_start {
                // A blank line: the event [event_start, next) is complete.
                let (start, end) = (self.event_start, next);
                self.event_start = next;
                if let Err(e) = on_event(&self.buf[start..end]) {
                    break Err(e);
                }
            }
        };
        // Keep only the partial event.
        if self.event_start > 0 {
            self.buf.drain(..self.event_start);
            self.scan -= self.event_start;
            self.event_start = 0;
        }
        result
    }

    /// Bytes held for an event not yet complete (to bound what a hostile upstream can make us hold).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut f = SseFramer::new();
        let mut events = Vec::new();
        for chunk in input.chunks(piece) {
            f.push(chunk, false, |e| {
                events.push(e.to_vec());
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        f.push(b"", true, |e| {
            events.push(e.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
        events
    }

    #[test]
    fn splits_events_however_the_chunks_fall() {
        let input = b"event: a\ndata: 1\n\n: keep-alive\n\ndata: x\ndata: y\n\n";
        for piece in [1, 2, 5, 100] {
            let events = split(input, piece);
            assert_eq!(events.len(), 3, "piece {piece}");
            assert_eq!(events.concat(), input.to_vec());
            assert_eq!(parse_event(&events[0]), SseEvent { name: b"a", data: Some(b"1".to_vec()) });
            assert_eq!(parse_event(&events[1]).data, None);
            assert_eq!(parse_event(&events[2]).data, Some(b"x\ny".to_vec()));
        }
    }

    #[test]
    fn crlf_and_cr_terminators() {
        for input in [&b"data: 1\r\n\r\ndata: 2\r\n\r\n"[..], b"data: 1\r\rdata: 2\r\r"] {
            for piece in [1, 3, 100] {
                let events = split(input, piece);
                assert_eq!(events.len(), 2, "{input:?} piece {piece}");
                assert_eq!(events.concat(), input.to_vec());
            }
        }
    }

    #[test]
    fn partial_event_is_held_and_counted() {
        let mut f = SseFramer::new();
        let mut n = 0;
        f.push(b"data: {\"a\":", false, |_| {
            n += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(n, 0);
        assert_eq!(f.pending(), b"data: {\"a\":".len());
    }

    #[test]
    fn a_callback_error_stops_the_split() {
        let mut f = SseFramer::new();
        let mut seen = 0;
        let r = f.push(b"data: 1\n\ndata: 2\n\ndata: 3\n\n", false, |_| {
            seen += 1;
            if seen == 2 {
                Err("stop")
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err("stop"));
        assert_eq!(seen, 2);
    }
}
