//! Provider keys for the gateway's key store (BYOK): from environment variables, or from
//! `provider=key` lines on standard input. Never from arguments, never printed.

use gateway_core::provider::SLUGS;
use gateway_core::secret::Secret;

/// Environment variables read for each provider, in order of preference.
pub const KEY_VARS: &[(&str, &[&str])] = &[
    ("openai", &["OPENAI_API_KEY"]),
    ("anthropic", &["ANTHROPIC_API_KEY"]),
    ("google-ai-studio", &["GOOGLE_AI_STUDIO_API_KEY", "GEMINI_API_KEY"]),
    ("workers-ai", &["WORKERS_AI_API_TOKEN"]),
    ("azure-openai", &["AZURE_OPENAI_API_KEY"]),
    ("aws-bedrock", &["AWS_BEDROCK_API_KEY"]),
];

/// The keys set in the environment.
pub fn from_env(lookup: &impl Fn(&str) -> Option<String>) -> Vec<(String, Secret)> {
    KEY_VARS
        .iter()
        .filter_map(|(slug, vars)| {
            vars.iter().find_map(|v| lookup(v).and_then(Secret::new)).map(|s| (slug.to_string(), s))
        })
        .collect()
}

/// Reads `provider=key` lines (blank lines and `#` comments skipped). An error names the line,
/// never its key.
pub fn from_lines(text: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((slug, key)) = line.split_once('=') else {
            return Err(format!("stdin line {}: expected `provider=key`", i + 1));
        };
        let slug = slug.trim();
        if !SLUGS.contains(&slug) {
            return Err(format!("stdin line {}: `{slug}` is not a provider (one of {})", i + 1, SLUGS.join(", ")));
        }
        let key = Secret::new(key).ok_or_else(|| format!("stdin line {}: the key for {slug} is empty", i + 1))?;
        keys.push((slug.to_owned(), key));
    }
    Ok(keys)
}

/// Stdin keys win over environment keys for the same provider.
pub fn merge(env: Vec<(String, Secret)>, stdin: Vec<(String, Secret)>) -> Vec<(String, Secret)> {
    let mut out: Vec<(String, Secret)> = env.into_iter().filter(|(p, _)| !stdin.iter().any(|(q, _)| q == p)).collect();
    out.extend(stdin);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_and_lines() {
        let env = from_env(&|k: &str| match k {
            "GEMINI_API_KEY" => Some("g-key".into()),
            "OPENAI_API_KEY" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].0, "google-ai-studio");
        let lines = from_lines("# keys\nopenai=sk-1\n\n anthropic = sk-ant-2 \n").unwrap();
        assert_eq!(
            lines.iter().map(|(p, k)| (p.as_str(), k.expose())).collect::<Vec<_>>(),
            [("openai", "sk-1"), ("anthropic", "sk-ant-2")]
        );
        let merged = merge(env, from_lines("google-ai-studio=g-2").unwrap());
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].1.expose(), "g-2");
    }

    #[test]
    fn bad_lines_name_the_line_not_the_key() {
        for (text, needle) in
            [("openai sk-SECRET", "line 1"), ("groq=sk-SECRET", "not a provider"), ("\nopenai=", "line 2")]
        {
            let e = from_lines(text).unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("SECRET"));
        }
    }
}
