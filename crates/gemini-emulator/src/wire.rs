//! Gemini's request shapes, parsed as strictly as Gemini parses them: unknown
//! field names are rejected with 400, and both the camelCase and snake_case
//! spellings of known fields are accepted (proto3 JSON mapping).
#![expect(
    dead_code,
    reason = "every documented field is declared so validation matches Gemini's; the emulator reads only some"
)]

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::google_error::GoogleError;

/// A JSON answer with Gemini's content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// Parses a request body into `T`, answering malformed JSON, unknown fields
/// and wrong types with Gemini's 400 INVALID_ARGUMENT.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &Value) -> Result<T, GoogleError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = snake_path(&e.path().to_string());
        let inner = e.into_inner().to_string();
        match inner
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(name) => {
                let at = path.rsplit_once('.').map_or("", |(parent, _)| parent);
                let message = format!(
                    "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
                );
                GoogleError::invalid_argument(at, message)
            }
            None => GoogleError::invalid_argument(
                &path,
                format!("Invalid value at '{path}': {inner}"),
            ),
        }
    })
}

/// The body as JSON, or Gemini's answer to a body that is not JSON.
pub(crate) fn json_body(bytes: &[u8]) -> Result<Value, GoogleError> {
    serde_json::from_slice(bytes).map_err(|e| {
        GoogleError::invalid_argument("", format!("Invalid JSON payload received. {e}"))
    })
}

/// `generationConfig.responseSchema` → `generation_config.response_schema`, as Google reports paths.
fn snake_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GenerateContentRequest {
    pub(crate) contents: Vec<Content>,
    #[serde(alias = "system_instruction")]
    pub(crate) system_instruction: Option<Content>,
    #[serde(alias = "generation_config")]
    pub(crate) generation_config: Option<GenerationConfig>,
    #[serde(alias = "safety_settings")]
    pub(crate) safety_settings: Option<Vec<SafetySetting>>,
    pub(crate) tools: Option<Vec<Value>>,
    #[serde(alias = "tool_config")]
    pub(crate) tool_config: Option<Value>,
    #[serde(alias = "cached_content")]
    pub(crate) cached_content: Option<String>,
    pub(crate) model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Content {
    #[serde(default)]
    pub(crate) parts: Vec<Part>,
    pub(crate) role: Option<String>,
}

impl Content {
    /// The text of all parts, joined.
    pub(crate) fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Part {
    pub(crate) text: Option<String>,
    #[serde(alias = "inline_data")]
    pub(crate) inline_data: Option<Value>,
    #[serde(alias = "file_data")]
    pub(crate) file_data: Option<Value>,
    #[serde(alias = "function_call")]
    pub(crate) function_call: Option<Value>,
    #[serde(alias = "function_response")]
    pub(crate) function_response: Option<Value>,
    pub(crate) thought: Option<bool>,
    #[serde(alias = "thought_signature")]
    pub(crate) thought_signature: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SafetySetting {
    pub(crate) category: String,
    pub(crate) threshold: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GenerationConfig {
    #[serde(alias = "stop_sequences")]
    pub(crate) stop_sequences: Option<Vec<String>>,
    #[serde(alias = "response_mime_type")]
    pub(crate) response_mime_type: Option<String>,
    #[serde(alias = "response_schema")]
    pub(crate) response_schema: Option<Schema>,
    #[serde(alias = "response_json_schema")]
    pub(crate) response_json_schema: Option<Value>,
    #[serde(alias = "response_modalities")]
    pub(crate) response_modalities: Option<Vec<String>>,
    #[serde(alias = "candidate_count")]
    pub(crate) candidate_count: Option<u32>,
    #[serde(alias = "max_output_tokens")]
    pub(crate) max_output_tokens: Option<u32>,
    pub(crate) temperature: Option<f64>,
    #[serde(alias = "top_p")]
    pub(crate) top_p: Option<f64>,
    #[serde(alias = "top_k")]
    pub(crate) top_k: Option<f64>,
    pub(crate) seed: Option<i64>,
    #[serde(alias = "presence_penalty")]
    pub(crate) presence_penalty: Option<f64>,
    #[serde(alias = "frequency_penalty")]
    pub(crate) frequency_penalty: Option<f64>,
    #[serde(alias = "response_logprobs")]
    pub(crate) response_logprobs: Option<bool>,
    pub(crate) logprobs: Option<u32>,
    #[serde(alias = "thinking_config")]
    pub(crate) thinking_config: Option<ThinkingConfig>,
    #[serde(alias = "media_resolution")]
    pub(crate) media_resolution: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ThinkingConfig {
    #[serde(alias = "include_thoughts")]
    pub(crate) include_thoughts: Option<bool>,
    #[serde(alias = "thinking_budget")]
    pub(crate) thinking_budget: Option<i64>,
    #[serde(alias = "thinking_level")]
    pub(crate) thinking_level: Option<String>,
}

/// Google's `Schema` message (an OpenAPI 3.0 subset). Being a proto message,
/// JSON-Schema keywords it does not define (`additionalProperties`, `$ref`,
/// ...) are unknown fields and rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Schema {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) nullable: Option<bool>,
    #[serde(rename = "enum")]
    pub(crate) variants: Option<Vec<String>>,
    #[serde(alias = "max_items")]
    pub(crate) max_items: Option<Value>,
    #[serde(alias = "min_items")]
    pub(crate) min_items: Option<Value>,
    pub(crate) properties: Option<BTreeMap<String, Schema>>,
    pub(crate) required: Option<Vec<String>>,
    #[serde(alias = "min_properties")]
    pub(crate) min_properties: Option<Value>,
    #[serde(alias = "max_properties")]
    pub(crate) max_properties: Option<Value>,
    #[serde(alias = "min_length")]
    pub(crate) min_length: Option<Value>,
    #[serde(alias = "max_length")]
    pub(crate) max_length: Option<Value>,
    pub(crate) pattern: Option<String>,
    pub(crate) example: Option<Value>,
    #[serde(alias = "any_of")]
    pub(crate) any_of: Option<Vec<Schema>>,
    #[serde(alias = "property_ordering")]
    pub(crate) property_ordering: Option<Vec<String>>,
    pub(crate) default: Option<Value>,
    pub(crate) items: Option<Box<Schema>>,
    pub(crate) minimum: Option<f64>,
    pub(crate) maximum: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct EmbedContentRequest {
    pub(crate) content: Content,
    pub(crate) model: Option<String>,
    #[serde(alias = "task_type")]
    pub(crate) task_type: Option<String>,
    pub(crate) title: Option<String>,
    #[serde(alias = "output_dimensionality")]
    pub(crate) output_dimensionality: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct BatchEmbedContentsRequest {
    pub(crate) requests: Vec<EmbedContentRequest>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_and_camel_case_spellings_are_both_accepted() {
        let body = json!({
            "contents": [{"parts": [{"text": "hi"}]}],
            "generation_config": {"responseMimeType": "application/json", "thinkingConfig": {"thinking_budget": 0}}
        });
        let parsed: GenerateContentRequest = parse_body(&body).unwrap();
        let config = parsed.generation_config.unwrap();
        assert_eq!(
            config.response_mime_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(config.thinking_config.unwrap().thinking_budget, Some(0));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name_and_place() {
        let body = json!({"contents": [], "generationConfig": {"temperatur": 1}});
        let error = parse_body::<GenerateContentRequest>(&body).unwrap_err();
        let text = format!("{error:?}");
        assert!(
            text.contains("Unknown name \\\"temperatur\\\" at 'generation_config'"),
            "{text}"
        );
    }

    #[test]
    fn response_schema_rejects_json_schema_only_keywords() {
        let body = json!({"contents": [], "generationConfig": {"responseSchema": {"type": "OBJECT", "additionalProperties": false}}});
        assert!(parse_body::<GenerateContentRequest>(&body).is_err());
    }
}
