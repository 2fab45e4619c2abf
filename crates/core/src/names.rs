//! One spelling per provider and model, before anything is grouped, joined or compared on them.
//!
//! The same model reaches the gateway under several names: the ledger writes the model as our
//! configuration names it (`claude-haiku-4-5`), AI Gateway's logs wrote the provider's own id
//! until 2026-09-01 and its standardised `provider/model` form since (`anthropic/claude-haiku-4.5`,
//! reference §4b), and providers answer with dated snapshots (`claude-3-5-haiku-20241022`,
//! `gpt-4o-2024-08-06`, Vertex's `claude-3-5-haiku@20241022`). Grouped as they come, one model
//! would be three rows, and a join by model would miss; compared as they come, an answer's
//! `model` would look like another model than the one asked for ([`same_model`]).
//!
//! The canonical model name is the provider's own API id without its date:
//! - a leading provider or author prefix is dropped (`anthropic/`, `google/`,
//!   `google-vertex-ai/google/`), and so is Gemini's resource prefix `models/`; Workers AI's
//!   `@cf/...` ids are ids, not prefixes, and stay;
//! - lower case;
//! - a trailing date is dropped (`-YYYYMMDD`, `-YYYY-MM-DD`, `@YYYYMMDD`);
//! - Claude versions are spelled with dashes (`claude-haiku-4.5` → `claude-haiku-4-5`), as
//!   Anthropic's API spells them; OpenAI's and Google's ids have dots in every spelling
//!   (`gpt-4.1`, `gemini-2.5-flash`) and keep them.
//!
//! Providers are AI Gateway's slugs everywhere in this code (`google-ai-studio`, not `gemini`):
//! the configuration's targets, the native routes and the logs all use them. `gemini` (and the
//! ledger schema's example spelling of it) is read as `google-ai-studio`.

/// How a target is named when its request names no model (a native call whose body has none):
/// its trace entry and ledger row say `provider/-`; nothing is marked or named for it.
pub const UNNAMED_MODEL: &str = "-";

/// Whether `model` names a model (not [`UNNAMED_MODEL`], not empty).
pub fn is_named(model: &str) -> bool {
    !model.is_empty() && model != UNNAMED_MODEL
}

/// Prefixes that name a provider or a model's author rather than the model.
const PREFIXES: &[&str] = &[
    "openai",
    "anthropic",
    "google",
    "google-ai-studio",
    "google-vertex-ai",
    "gemini",
    "workers-ai",
    "azure-openai",
    "aws-bedrock",
    "groq",
    "mistral",
    "cohere",
    "deepseek",
    "grok",
    "xai",
    "perplexity",
    "perplexity-ai",
    "cerebras",
    "openrouter",
    "models",
];

/// A provider's canonical name: AI Gateway's slug, lower case.
pub fn provider(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "gemini" => "google-ai-studio".to_owned(),
        _ => lower,
    }
}

/// A model's canonical name (see the module comment).
pub fn model(name: &str) -> String {
    let mut rest = name.trim();
    // At most two prefixes: `google-vertex-ai/google/gemini-2.5-pro`.
    for _ in 0..2 {
        match rest.split_once('/') {
            Some((head, tail)) if !tail.is_empty() && PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(head)) => {
                rest = tail
            }
            _ => break,
        }
    }
    let lower = rest.to_ascii_lowercase();
    let undated = without_date(&lower);
    if undated.starts_with("claude") {
        dashed_versions(undated)
    } else {
        undated.to_owned()
    }
}

/// Whether an answer that names `answered` came from the model `asked` for: the same canonical
/// name, or the same with a pinned version suffix (Gemini's `gemini-2.0-flash-001` is
/// `gemini-2.0-flash`, OpenAI's `gpt-4-0613` is `gpt-4`). Anything else is another model (a provider that routed the request to
/// a successor answers with the successor's name).
pub fn same_model(asked: &str, answered: &str) -> bool {
    let (asked, answered) = (model(asked), model(answered));
    asked == answered || without_version(&asked) == without_version(&answered)
}

/// The model that answered, when an answer's `model` field (`answered`) names another model
/// than the one `asked` for: its canonical name, cut to what a header value and a ledger
/// column safely hold. `None`: the model asked for answered (or the answer named none).
pub fn answered_by(asked: &str, answered: Option<&str>) -> Option<String> {
    let answered = answered.filter(|a| !a.trim().is_empty() && !same_model(asked, a))?;
    let name: String =
        model(answered).chars().filter(|c| c.is_ascii_alphanumeric() || "-._:@/".contains(*c)).take(128).collect();
    (!name.is_empty()).then_some(name)
}

/// `name` without a trailing `-NNN` or `-MMDD` (a pinned version of the model before it).
fn without_version(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((head, tail))
            if !head.is_empty() && matches!(tail.len(), 3 | 4) && tail.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head
        }
        _ => name,
    }
}

/// `name` without a trailing `-YYYYMMDD`, `-YYYY-MM-DD` or `@YYYYMMDD` (also how the price
/// table finds a dated model's row).
pub(crate) fn without_date(name: &str) -> &str {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(i) = name.rfind(['-', '@']) {
        let tail = &name[i + 1..];
        if tail.len() == 8 && digits(tail) && i > 0 {
            return &name[..i];
        }
    }
    let b = name.as_bytes();
    if b.len() > 11 && name.is_char_boundary(b.len() - 11) {
        let (head, tail) = name.split_at(b.len() - 11);
        let t = tail.as_bytes();
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && digits(&tail[1..5])
            && digits(&tail[6..8])
            && digits(&tail[9..])
        {
            return head;
        }
    }
    name
}

/// Dots between two digits become dashes (`4.5` → `4-5`).
fn dashed_versions(name: &str) -> String {
    let b = name.as_bytes();
    name.char_indices()
        .map(|(i, c)| {
            let between_digits =
                c == '.' && i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if between_digits {
                '-'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unnamed_model_names_nothing() {
        assert!(is_named("gpt-4o") && !is_named(UNNAMED_MODEL) && !is_named(""));
    }

    #[test]
    fn old_and_new_spellings_meet() {
        for (spellings, canonical) in [
            (
                &[
                    "claude-haiku-4-5",
                    "claude-haiku-4.5",
                    "anthropic/claude-haiku-4.5",
                    "anthropic/claude-haiku-4-5",
                    "claude-haiku-4-5-20251001",
                    "Anthropic/Claude-Haiku-4.5",
                ][..],
                "claude-haiku-4-5",
            ),
            (&["claude-3-5-haiku-20241022", "claude-3.5-haiku", "claude-3-5-haiku@20241022"][..], "claude-3-5-haiku"),
            (
                &["claude-sonnet-4-5", "anthropic/claude-sonnet-4.5", "claude-sonnet-4-5-20250929"][..],
                "claude-sonnet-4-5",
            ),
            (&["gpt-4o", "gpt-4o-2024-08-06", "openai/gpt-4o", "openai/gpt-4o-2024-08-06"][..], "gpt-4o"),
            (&["gpt-4o-mini", "openai/gpt-4o-mini-2024-07-18"][..], "gpt-4o-mini"),
            (&["gpt-4.1", "openai/gpt-4.1"][..], "gpt-4.1"),
            (
                &[
                    "gemini-2.5-flash",
                    "google/gemini-2.5-flash",
                    "google-ai-studio/gemini-2.5-flash",
                    "google-vertex-ai/google/gemini-2.5-flash",
                ][..],
                "gemini-2.5-flash",
            ),
        ] {
            for s in spellings {
                assert_eq!(model(s), canonical, "{s}");
            }
        }
    }

    #[test]
    fn ids_that_only_look_like_prefixes_stay() {
        assert_eq!(model("@cf/meta/llama-3.1-8b-instruct"), "@cf/meta/llama-3.1-8b-instruct");
        assert_eq!(model("workers-ai/@cf/meta/llama-3.1-8b-instruct"), "@cf/meta/llama-3.1-8b-instruct");
        assert_eq!(model("acme/private-model"), "acme/private-model");
        assert_eq!(model("openai/"), "openai/");
        assert_eq!(model("gpt-4o-20"), "gpt-4o-20", "not a date");
        assert_eq!(model("-20241022"), "-20241022");
        assert_eq!(model(""), "");
        assert_eq!(model("modèle-é2024-08-06"), "modèle-é2024-08-06", "not a char boundary: no panic");
        assert_eq!(model("ü-2024-08-06"), "ü");
        // Not a version: only dots between digits change.
        assert_eq!(model("claude.x-4.5"), "claude.x-4-5");
    }

    #[test]
    fn an_answer_from_the_model_asked_is_told_from_one_from_another() {
        for (asked, answered) in [
            ("gemini-2.5-flash", "gemini-2.5-flash"),
            ("gemini-2.5-flash", "models/gemini-2.5-flash"),
            ("gemini-2.0-flash", "gemini-2.0-flash-001"),
            ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
            ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
            ("google-ai-studio/gemini-3.5-flash-lite", "gemini-3.5-flash-lite"),
            ("GPT-4o", "gpt-4o"),
            ("gpt-4", "gpt-4-0613"),
        ] {
            assert!(same_model(asked, answered), "{asked} / {answered}");
        }
        for (asked, answered) in [
            ("gemini-2.5-flash", "gemini-3.5-flash-lite"),
            ("gemini-2.5-flash", "gemini-2.5-flash-lite"),
            ("gpt-4o", "gpt-4o-mini"),
            ("claude-sonnet-4-5", "claude-haiku-4-5"),
            ("gpt-4", "gpt-4-0613x"),
            ("gpt-4", "gpt-4-32k"),
            ("", "x"),
        ] {
            assert!(!same_model(asked, answered), "{asked} / {answered}");
        }
    }

    #[test]
    fn providers_are_ai_gateway_slugs() {
        assert_eq!(provider("google-ai-studio"), "google-ai-studio");
        assert_eq!(provider("gemini"), "google-ai-studio");
        assert_eq!(provider("OpenAI"), "openai");
        assert_eq!(provider("workers-ai"), "workers-ai");
    }
}
