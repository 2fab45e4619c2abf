//! The simulated model: deterministic answers and token counts, the same for every wire format.
//!
//! * CONTENT = `Simulated answer from {provider}/{model}: {text of the last user message}`.
//! * Prompt tokens P = Σ over messages of (⌈chars(text)/4⌉ + 4), chars counted as Unicode scalar
//!   values (roughly OpenAI's "4 characters per token" rule plus a per-message overhead).
//! * Completion tokens C = number of whitespace-separated words in CONTENT.
//! * A `max_tokens`-style limit smaller than C keeps the first `limit` words and reports the
//!   finish reason "length" (`max_tokens` for Anthropic, `MAX_TOKENS` for Gemini).
//!
//! Content is kept as "pieces", one per word with the whitespace that preceded it, so a stream
//! that sends one piece per event concatenates back to CONTENT byte for byte.

/// The text of a conversation, reduced to what the simulated model looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// The text of every message (system included), in order; only used for token counting.
    pub texts: Vec<String>,
    /// Text of the last message whose role is the user's.
    pub last_user: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Natural end.
    Stop,
    /// Cut at the caller's token limit.
    Length,
    /// Blocked by a (simulated) content filter: no content at all.
    ContentFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Response id, in the style of the wire format (`chatcmpl-7`, `msg_sim000007`).
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Model as echoed in the response (without any provider prefix).
    pub model: String,
    /// CONTENT split into word pieces (see the module comment).
    pub pieces: Vec<String>,
    pub finish: Finish,
    pub prompt_tokens: u64,
}

impl Answer {
    /// The answer of the simulated `provider`/`model` to `conv`, cut at `max_tokens` words.
    pub fn new(
        id: String,
        created: u64,
        provider: &str,
        model: &str,
        conv: &Conversation,
        max_tokens: Option<u64>,
    ) -> Self {
        let content = format!("Simulated answer from {provider}/{model}: {}", conv.last_user);
        let mut pieces = split_pieces(&content);
        let mut finish = Finish::Stop;
        if let Some(limit) = max_tokens {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if limit < pieces.len() {
                pieces.truncate(limit);
                // The whitespace that followed the cut word belongs to no word any more.
                if let Some(last) = pieces.last_mut() {
                    let kept = last.trim_end().len();
                    last.truncate(kept);
                }
                finish = Finish::Length;
            }
        }
        Self { id, created, model: model.to_string(), pieces, finish, prompt_tokens: prompt_tokens(&conv.texts) }
    }

    /// The same answer, blocked by the content filter.
    pub fn blocked(mut self) -> Self {
        self.pieces.clear();
        self.finish = Finish::ContentFilter;
        self
    }

    pub fn content(&self) -> String {
        self.pieces.concat()
    }

    /// C: the number of words in the content.
    pub fn completion_tokens(&self) -> u64 {
        self.pieces.len() as u64
    }
}

/// P for a list of message texts.
pub fn prompt_tokens<S: AsRef<str>>(texts: &[S]) -> u64 {
    texts.iter().map(|t| (t.as_ref().chars().count() as u64).div_ceil(4) + 4).sum()
}

/// Splits text into words, each carrying the whitespace before it; whitespace after the last
/// word is appended to it. Concatenating the pieces gives the text back exactly.
pub fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(std::mem::take(&mut current));
                in_word = false;
            }
        } else {
            in_word = true;
        }
        current.push(c);
    }
    if in_word {
        pieces.push(current);
    } else if let Some(last) = pieces.last_mut() {
        last.push_str(&current);
    }
    // Text that is only whitespace has no words and yields no pieces.
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(texts: &[&str], last_user: &str) -> Conversation {
        Conversation { texts: texts.iter().map(|s| s.to_string()).collect(), last_user: last_user.into() }
    }

    #[test]
    fn pieces_concatenate_back() {
        for text in ["a b  c", "  lead", "trail  \n", "one", "x\ty\nz ", ""] {
            let pieces = split_pieces(text);
            assert_eq!(pieces.len(), text.split_whitespace().count(), "{text:?}");
            if !text.trim().is_empty() {
                assert_eq!(pieces.concat(), text);
            }
        }
        assert_eq!(split_pieces("Hi there"), ["Hi", " there"]);
    }

    #[test]
    fn counts_tokens() {
        // "Hello" = 5 chars → 2 + 4; "" → 0 + 4; "héllo wörld" = 11 chars → 3 + 4.
        assert_eq!(prompt_tokens(&["Hello", "", "héllo wörld"]), 6 + 4 + 7);
    }

    #[test]
    fn answers_and_truncates() {
        let c = conv(&["sys", "What is up?"], "What is up?");
        let a = Answer::new("id".into(), 1, "openai", "gpt-4o-mini", &c, None);
        assert_eq!(a.content(), "Simulated answer from openai/gpt-4o-mini: What is up?");
        assert_eq!(a.completion_tokens(), 7);
        assert_eq!(a.finish, Finish::Stop);
        assert_eq!(a.prompt_tokens, 5 + 7);

        let t = Answer::new("id".into(), 1, "openai", "gpt-4o-mini", &c, Some(3));
        assert_eq!(t.content(), "Simulated answer from");
        assert_eq!(t.finish, Finish::Length);
        let same = Answer::new("id".into(), 1, "openai", "gpt-4o-mini", &c, Some(7));
        assert_eq!(same.finish, Finish::Stop);

        let b = a.blocked();
        assert_eq!(b.content(), "");
        assert_eq!(b.completion_tokens(), 0);
    }
}
