//! The providers reachable on native routes (an allow-list: nothing else is ever forwarded), and
//! the wire format each one answers in.

/// A provider with a native route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    OpenAi,
    Anthropic,
    GoogleAiStudio,
    WorkersAi,
    AzureOpenAi,
    AwsBedrock,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Provider::OpenAi,
        Provider::Anthropic,
        Provider::GoogleAiStudio,
        Provider::WorkersAi,
        Provider::AzureOpenAi,
        Provider::AwsBedrock,
    ];

    /// AI Gateway's provider slug (reference §2), which is also the route's first path segment.
    pub fn slug(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::GoogleAiStudio => "google-ai-studio",
            Provider::WorkersAi => "workers-ai",
            Provider::AzureOpenAi => "azure-openai",
            Provider::AwsBedrock => "aws-bedrock",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.slug() == slug)
    }
}

/// Every native slug, for messages and configuration checks.
pub const SLUGS: [&str; 6] = ["openai", "anthropic", "google-ai-studio", "workers-ai", "azure-openai", "aws-bedrock"];

/// The wire format of a native call's answer: where its usage is and what a stream looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions or Responses (also Workers AI and Azure OpenAI).
    OpenAi,
    /// Anthropic Messages (also Bedrock's Messages endpoint).
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
    /// Bedrock `invoke`/`converse`: the model's own body (Anthropic-shaped for Claude) or Converse.
    Bedrock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_slug(p.slug()), Some(p));
        }
        assert_eq!(SLUGS.to_vec(), Provider::ALL.map(Provider::slug).to_vec());
        for bad in ["", "OpenAI", "groq", "openai/", "perplexity-ai"] {
            assert_eq!(Provider::from_slug(bad), None, "{bad}");
        }
    }
}
