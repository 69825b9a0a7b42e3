//! `generateContent`: deterministic answers in Gemini's envelope, structured
//! output filled in from the product named in the prompt, and the content
//! faults (malformed JSON, blocked prompt, MAX_TOKENS without parts, SAFETY).

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::admin::Fault;
use crate::fill::{Product, fill, fnv1a};
use crate::google_error::GoogleError;
use crate::wire::{GenerateContentRequest, parse_body};

/// Answers one generateContent call for `model`.
pub(crate) fn generate_content(
    model: &str,
    body: &Value,
    fault: Option<&Fault>,
) -> Result<Value, GoogleError> {
    let request: GenerateContentRequest = parse_body(body)?;
    if request.contents.is_empty() {
        return Err(GoogleError::invalid_argument(
            "contents",
            "* GenerateContentRequest.contents: contents is not specified",
        ));
    }
    let config = request.generation_config.unwrap_or_default();
    if config.response_schema.is_some() && config.response_json_schema.is_some() {
        return Err(GoogleError::invalid_argument(
            "generation_config",
            "* GenerateContentRequest.generation_config: only one of response_schema and \
             response_json_schema may be set",
        ));
    }
    let json_mime = config.response_mime_type.as_deref() == Some("application/json");
    let has_schema = config.response_schema.is_some() || config.response_json_schema.is_some();
    if has_schema && !json_mime {
        return Err(GoogleError::invalid_argument(
            "generation_config.response_mime_type",
            "* GenerateContentRequest.generation_config.response_mime_type: response_mime_type \
             must be application/json when a response schema is set",
        ));
    }

    let prompt = request
        .contents
        .iter()
        .map(crate::wire::Content::text)
        .collect::<Vec<_>>()
        .join("\n");
    let system = request
        .system_instruction
        .as_ref()
        .map(crate::wire::Content::text)
        .unwrap_or_default();
    let prompt_tokens = tokens(&prompt) + tokens(&system);
    // Dynamic thinking: thinking models think unless told not to, except on
    // trivially short prompts.
    let thinking = is_thinking_model(model)
        && prompt_tokens >= 4
        && config
            .thinking_config
            .as_ref()
            .and_then(|t| t.thinking_budget)
            != Some(0);

    let product = Product::from_prompt(&prompt);
    let text = if json_mime {
        let schema = raw_schema(body);
        let value = match &schema {
            Some(schema) => fill(schema, &product),
            None => json!({ "name": product.name, "description": product.description() }),
        };
        serde_json::to_string_pretty(&value).unwrap_or_default()
    } else {
        product.description()
    };

    let envelope = Envelope {
        model,
        prompt_tokens,
        thinking,
        seed: &prompt,
    };
    Ok(match fault {
        Some(Fault::BlockedPrompt) => envelope.blocked(),
        Some(Fault::MaxTokens) => envelope.finished_without_text("MAX_TOKENS", None),
        Some(Fault::Safety) => envelope.finished_without_text(
            "SAFETY",
            Some(json!([{
                "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                "probability": "HIGH",
                "blocked": true
            }])),
        ),
        Some(Fault::MalformedJson) => {
            // Cut the answer mid-way, as a truncated generation would be.
            let cut: String = text.chars().take(text.chars().count() / 2).collect();
            envelope.answer(&cut)
        }
        _ => envelope.answer(&text),
    })
}

/// The schema as sent, in either spelling, to fill in.
fn raw_schema(body: &Value) -> Option<Value> {
    let config = body
        .get("generationConfig")
        .or_else(|| body.get("generation_config"))?;
    [
        "responseJsonSchema",
        "response_json_schema",
        "responseSchema",
        "response_schema",
    ]
    .iter()
    .find_map(|key| config.get(*key).cloned())
}

fn is_thinking_model(model: &str) -> bool {
    model.starts_with("gemini-2.5") || model.starts_with("gemini-3")
}

/// Roughly four characters a token, as Gemini counts English text.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

struct Envelope<'a> {
    model: &'a str,
    prompt_tokens: u64,
    thinking: bool,
    seed: &'a str,
}

impl Envelope<'_> {
    fn answer(&self, text: &str) -> Value {
        let mut part = json!({ "text": text });
        if self.model.starts_with("gemini-3") {
            // Gemini 3 signs its parts; the value is opaque to clients.
            let signature = fnv1a(format!("sig:{text}").as_bytes()).to_be_bytes();
            part["thoughtSignature"] =
                json!(STANDARD.encode([&signature[..], b"emulator"].concat()));
        }
        let candidate_tokens = tokens(text);
        let mut body = self.common();
        body["candidates"] = json!([{
            "content": { "parts": [part], "role": "model" },
            "finishReason": "STOP",
            "index": 0
        }]);
        body["usageMetadata"]["candidatesTokenCount"] = json!(candidate_tokens);
        self.total(&mut body, candidate_tokens);
        body
    }

    fn finished_without_text(&self, reason: &str, safety: Option<Value>) -> Value {
        let mut candidate = json!({
            "content": { "role": "model" },
            "finishReason": reason,
            "index": 0
        });
        if let Some(ratings) = safety {
            candidate["safetyRatings"] = ratings;
        }
        let mut body = self.common();
        body["candidates"] = json!([candidate]);
        self.total(&mut body, 0);
        body
    }

    fn blocked(&self) -> Value {
        let mut body = self.common();
        body["promptFeedback"] = json!({
            "blockReason": "SAFETY",
            "safetyRatings": [
                { "category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE" },
                { "category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE" },
                { "category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE" },
                { "category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH" }
            ]
        });
        // A blocked prompt costs only its own tokens: no thinking happened.
        body["usageMetadata"]["totalTokenCount"] = json!(self.prompt_tokens);
        body
    }

    fn common(&self) -> Value {
        json!({
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens,
                "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": self.prompt_tokens }]
            },
            "modelVersion": self.model,
            "responseId": response_id(self.seed),
        })
    }

    fn total(&self, body: &mut Value, candidate_tokens: u64) {
        let thoughts = if self.thinking {
            64 + self.prompt_tokens % 128
        } else {
            0
        };
        if thoughts > 0 {
            body["usageMetadata"]["thoughtsTokenCount"] = json!(thoughts);
        }
        body["usageMetadata"]["totalTokenCount"] =
            json!(self.prompt_tokens + candidate_tokens + thoughts);
    }
}

/// An opaque id, unique per answer.
fn response_id(seed: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = fnv1a(format!("{n}:{seed}").as_bytes());
    URL_SAFE_NO_PAD.encode([hash.to_be_bytes(), n.to_be_bytes()].concat())
}
