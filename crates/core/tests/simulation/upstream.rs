//! The fake upstream: how each attempt goes (a fault, a stream's plan), and what an answer is —
//! its content (for a request that asked for JSON: valid, prose, or JSON of the wrong shape),
//! the usage it reports (in each shape providers report thinking), and the model it names.

use std::collections::VecDeque;
use std::rc::Rc;

use gateway_core::attempt::AigRefusal;
use gateway_core::money::pricing::{Prices, Usd};
use gateway_core::output::OutputContract;

/// A secret the upstream echoes back in its errors: it must never reach a client.
pub const SECRET: &str = "aig-sim-SECRET-7f3a";

pub const NAMES: [&str; 3] = ["p1", "p2", "p3"];
/// Each provider's two models: `m`, and `old` (which a schedule may retire).
pub const MODELS: [&str; 2] = ["m", "old"];
pub const IDS: [[&str; 2]; 3] = [["p1/m", "p1/old"], ["p2/m", "p2/old"], ["p3/m", "p3/old"]];
/// Another model an answer may name: priced at twice the rate of the asked ones.
pub const DEAR: &str = "m2";
/// Another model an answer may name that has no price: priced as the asked model.
pub const UNPRICED: &str = "m9";

thread_local! {
    static PRICES: Rc<Prices> = Rc::new(price_table());
    static CONTRACTS: [OutputContract; 2] = [parse_contract(LABELS), parse_contract(JSON_OBJECT)];
}

/// The simulated prices: 1 pUSD a token for `m` and `old`, 2 for `m2`, on every provider.
pub fn prices() -> Rc<Prices> {
    PRICES.with(Rc::clone)
}

fn price_table() -> Prices {
    let row = |p: &str, m: &str, rate: &str| {
        format!(
            r#"{{"provider":"{p}","model":"{m}","input":"{rate}","output":"{rate}","cached_input":null,"source":"sim","as_of":"2026-12-06"}}"#
        )
    };
    let rows: Vec<String> = NAMES
        .iter()
        .flat_map(|p| [row(p, "m", "0.000001"), row(p, "old", "0.000001"), row(p, DEAR, "0.000002")])
        .collect();
    Prices::from_json(&format!(r#"{{"unit":"USD per 1,000,000 tokens","models":[{}]}}"#, rows.join(",")))
        .expect("the sim's prices")
}

/// The response formats a JSON-mode request asks with.
pub const LABELS: &str = r#"{"type":"json_schema","json_schema":{"name":"labels","strict":true,"schema":{"type":"object","properties":{"labels":{"type":"array","items":{"type":"string"}}},"required":["labels"],"additionalProperties":false}}}"#;
pub const JSON_OBJECT: &str = r#"{"type":"json_object"}"#;

/// The contract of one of the formats above (compiled once).
pub fn contract(format: &str) -> OutputContract {
    CONTRACTS.with(|c| if format == LABELS { c[0].clone() } else { c[1].clone() })
}

fn parse_contract(format: &str) -> OutputContract {
    OutputContract::from_response_format(format).expect("a response_format").expect("one that asks for JSON")
}

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How one attempt goes before its answer (a stream's course after a 200 is a [`StreamPlan`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Answer,
    UnknownCost,
    CacheHit,
    ContentFilter,
    /// A status, with a `Retry-After` in ms.
    Status(u16, Option<u64>),
    /// One of AI Gateway's own refusals in its error shape, with a `Retry-After` in ms.
    Refusal(AigRefusal, Option<u64>),
    Timeout,
    Unreachable,
    Malformed,
    /// The body starts and then stops.
    SlowBody,
}

/// How one streamed attempt goes (after a 200; a status or a timeout is a [`Fault`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamPlan {
    Clean,
    CutBefore,
    StallBefore,
    ErrorBefore,
    CutAfter,
    StallAfter,
    MalformedAfter,
    SecretEcho,
    /// The client leaves after this many sends.
    ClientLeaves(usize),
}

/// What an answer's content is, for a request that asked for JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Content {
    Valid,
    /// Not JSON.
    Prose,
    /// JSON, of another shape than the labels schema asks (an object all the same).
    WrongJson,
}

/// How the usage reports thinking (every shape bills the same output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UsageShape {
    Plain,
    /// Gemini through compat: thinking out of `completion_tokens`, in `reasoning_tokens` and the total.
    GeminiThinking,
    /// Gemini through compat: thinking only in the total.
    GeminiTotalOnly,
    /// OpenAI: reasoning inside `completion_tokens`.
    OpenAiThinking,
    /// No total: reasoning reported apart.
    NoTotal,
}

/// What the answer's `model` field names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Named {
    Asked,
    /// A dated snapshot of the asked model: the same model.
    Dated,
    Other(&'static str),
}

/// One answer's shape, as a script or the dice give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub content: Content,
    pub usage: UsageShape,
    pub named: Named,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape { content: Content::Valid, usage: UsageShape::Plain, named: Named::Asked }
    }
}

/// One request's upstream: scripts first, then the dice (or clean answers).
pub struct RequestUpstream {
    pub faults: VecDeque<Fault>,
    pub plans: VecDeque<StreamPlan>,
    pub shapes: VecDeque<Shape>,
    pub random: Option<Rng>,
}

pub const REFUSALS: [AigRefusal; 8] = [
    AigRefusal::SpendLimit,
    AigRefusal::RateLimited,
    AigRefusal::NoCredits,
    AigRefusal::PolicyDenied,
    AigRefusal::PromptBlocked,
    AigRefusal::DlpBlocked,
    AigRefusal::ResponseBlocked,
    AigRefusal::GuardrailUnavailable,
];

impl RequestUpstream {
    pub fn fault(&mut self) -> Fault {
        if let Some(f) = self.faults.pop_front() {
            return f;
        }
        let Some(rng) = &mut self.random else { return Fault::Answer };
        match rng.below(100) {
            0..=39 => Fault::Answer,
            40..=44 => Fault::UnknownCost,
            45..=49 => Fault::CacheHit,
            50..=54 => Fault::ContentFilter,
            55..=59 => Fault::Status(429, rng.chance(60).then(|| rng.range(0, 3) * 250)),
            60..=67 => Fault::Status([500, 502, 503, 529][rng.below(4) as usize], rng.chance(30).then_some(100)),
            68..=71 => Fault::Status([400, 404, 422][rng.below(3) as usize], None),
            72..=74 => Fault::Status([401, 403][rng.below(2) as usize], None),
            75..=81 => Fault::Timeout,
            82..=87 => Fault::Unreachable,
            88..=93 => Fault::Malformed,
            94..=96 => Fault::SlowBody,
            _ => {
                let r = REFUSALS[rng.below(REFUSALS.len() as u64) as usize];
                Fault::Refusal(r, (r == AigRefusal::RateLimited && rng.chance(50)).then_some(300))
            }
        }
    }

    pub fn plan(&mut self) -> StreamPlan {
        if let Some(p) = self.plans.pop_front() {
            return p;
        }
        let Some(rng) = &mut self.random else { return StreamPlan::Clean };
        match rng.below(100) {
            0..=39 => StreamPlan::Clean,
            40..=47 => StreamPlan::CutBefore,
            48..=54 => StreamPlan::StallBefore,
            55..=59 => StreamPlan::ErrorBefore,
            60..=67 => StreamPlan::CutAfter,
            68..=74 => StreamPlan::StallAfter,
            75..=80 => StreamPlan::MalformedAfter,
            81..=86 => StreamPlan::SecretEcho,
            _ => StreamPlan::ClientLeaves(rng.below(3) as usize),
        }
    }

    pub fn shape(&mut self) -> Shape {
        if let Some(s) = self.shapes.pop_front() {
            return s;
        }
        let Some(rng) = &mut self.random else { return Shape::default() };
        let content = match rng.below(100) {
            0..=69 => Content::Valid,
            70..=84 => Content::Prose,
            _ => Content::WrongJson,
        };
        let usage = [
            UsageShape::Plain,
            UsageShape::GeminiThinking,
            UsageShape::GeminiTotalOnly,
            UsageShape::OpenAiThinking,
            UsageShape::NoTotal,
        ][rng.below(5) as usize];
        let named = match rng.below(100) {
            0..=79 => Named::Asked,
            80..=87 => Named::Dated,
            88..=95 => Named::Other(DEAR),
            _ => Named::Other(UNPRICED),
        };
        Shape { content, usage, named }
    }
}

/// One answer to write: its shape, its token counts, and the model asked.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub shape: Shape,
    /// The model asked for.
    pub model: &'static str,
    pub prompt: u64,
    /// The output billed (thinking included), however the usage reports it.
    pub output: u64,
    /// The request asked for JSON.
    pub json: bool,
}

impl Written {
    /// What the books must settle this answer at when its usage is read: its tokens at the
    /// rate of the model that answered (twice for the dear one), computed here apart from the
    /// gateway's own rule.
    pub fn expected_cost(&self) -> Usd {
        let rate = if self.shape.named == Named::Other(DEAR) { 2 } else { 1 };
        Usd((self.prompt + self.output) * rate)
    }

    /// The model field the answer carries.
    pub fn model_field(&self) -> String {
        match self.shape.named {
            Named::Asked => self.model.to_owned(),
            Named::Dated => format!("{}-2026-11-30", self.model),
            Named::Other(m) => m.to_owned(),
        }
    }

    /// Its content: plain text unless the request asked for JSON.
    pub fn content(&self) -> &'static str {
        match (self.json, self.shape.content) {
            (false, _) => "Hello",
            (true, Content::Valid) => r#"{"labels":["bug","needs-triage"]}"#,
            (true, Content::Prose) => "Here are the labels: bug, needs-triage.",
            (true, Content::WrongJson) => r#"{"label":"bug"}"#,
        }
    }

    /// The usage object, in the shape drawn; every shape bills `output`.
    pub fn usage(&self) -> String {
        let (p, o) = (self.prompt, self.output);
        match self.shape.usage {
            UsageShape::Plain => format!(r#"{{"prompt_tokens":{p},"completion_tokens":{o},"total_tokens":{}}}"#, p + o),
            UsageShape::GeminiThinking => format!(
                r#"{{"prompt_tokens":{p},"completion_tokens":{},"total_tokens":{},"completion_tokens_details":{{"reasoning_tokens":{}}}}}"#,
                o / 3,
                p + o,
                o - o / 3
            ),
            UsageShape::GeminiTotalOnly => {
                format!(r#"{{"prompt_tokens":{p},"completion_tokens":{},"total_tokens":{}}}"#, o / 2, p + o)
            }
            UsageShape::OpenAiThinking => format!(
                r#"{{"prompt_tokens":{p},"completion_tokens":{o},"total_tokens":{},"completion_tokens_details":{{"reasoning_tokens":{}}}}}"#,
                p + o,
                o / 2
            ),
            UsageShape::NoTotal => format!(
                r#"{{"prompt_tokens":{p},"completion_tokens":{},"completion_tokens_details":{{"reasoning_tokens":{}}}}}"#,
                o - o / 2,
                o / 2
            ),
        }
    }

    /// A whole chat completion; `usage` false for one that reports none.
    pub fn completion(&self, finish: &str, usage: bool) -> Vec<u8> {
        let content = if finish == "content_filter" { "null".to_owned() } else { json_string(self.content()) };
        let usage = if usage { format!(r#","usage":{}"#, self.usage()) } else { String::new() };
        format!(
            r#"{{"id":"c","object":"chat.completion","model":"{}","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"{finish}"}}]{usage}}}"#,
            self.model_field()
        )
        .into_bytes()
    }

    /// A tool-call answer's body or event (written by `tool_calls.rs` for a model `m`, with a
    /// fixed usage) as this answer writes it: its model field, and its usage (or none).
    pub fn with_model_and_usage(&self, text: &str, usage: bool) -> Vec<u8> {
        let text = text.replace("\"model\":\"m\"", &format!("\"model\":\"{}\"", self.model_field()));
        let fixed = r#","usage":{"completion_tokens":4,"prompt_tokens":3,"total_tokens":7}"#;
        let usage = if usage { format!(r#","usage":{}"#, self.usage()) } else { String::new() };
        text.replace(fixed, &usage).into_bytes()
    }

    /// A stream's first event: the role, and the model.
    pub fn role_event(&self) -> Vec<u8> {
        format!(
            "data: {{\"id\":\"c\",\"model\":\"{}\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}}}}]}}\n\n",
            self.model_field()
        )
        .into_bytes()
    }

    /// The content in `pieces` delta events.
    pub fn content_events(&self, pieces: usize) -> Vec<Vec<u8>> {
        let content = self.content();
        let step = content.len().div_ceil(pieces.max(1)).max(1);
        content
            .as_bytes()
            .chunks(step)
            .map(|piece| {
                let text = std::str::from_utf8(piece).unwrap_or("");
                format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}}}}]}}\n\n", json_string(text))
                    .into_bytes()
            })
            .collect()
    }

    /// The finish event and the final usage event.
    pub fn end_events(&self, usage: bool) -> Vec<Vec<u8>> {
        let mut events =
            vec![b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".to_vec()];
        if usage {
            events.push(format!("data: {{\"choices\":[],\"usage\":{}}}\n\n", self.usage()).into_bytes());
        }
        events
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// What AI Gateway sends for a refusal: status, body in its own error shape (echoing the
/// gateway token, to prove it is redacted), and whether a `cf-aig-dlp` header comes with it.
pub fn aig_refusal_answer(r: AigRefusal) -> (u16, String, bool) {
    let (status, code, message, dlp) = match r {
        AigRefusal::SpendLimit => (429, 2041, "Spend limit exceeded", false),
        AigRefusal::RateLimited => (429, 2003, "Rate limited", false),
        AigRefusal::NoCredits => (402, 2021, "Insufficient credits", false),
        AigRefusal::PolicyDenied => (403, 2050, "Access denied by policy", false),
        AigRefusal::PromptBlocked => (424, 2016, "Prompt blocked due to security configurations", false),
        AigRefusal::DlpBlocked => (400, 2100, "Blocked by DLP", true),
        AigRefusal::ResponseBlocked => (424, 2017, "Response blocked due to security configurations", false),
        AigRefusal::GuardrailUnavailable => (503, 7013, "Guardrail service unavailable", false),
    };
    let body = format!(
        r#"{{"success":false,"result":[],"messages":[],"error":[{{"code":{code},"message":"{message} (Bearer {SECRET})"}}],"name":"AiGatewayError"}}"#
    );
    (status, body, dlp)
}

/// What a provider answers for a model it retired (Gemini's words, reference §2).
pub fn retired_answer(model: &str) -> (u16, String) {
    (
        404,
        format!(
            r#"{{"error":{{"code":404,"message":"This model models/{model} is no longer available to new users. Please update your code to use a newer model.","status":"NOT_FOUND"}}}}"#
        ),
    )
}
