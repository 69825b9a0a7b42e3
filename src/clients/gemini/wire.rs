//! Gemini's JSON shapes, private to the client. Field names follow the API's
//! camelCase; only the fields we read are declared, unknown ones are ignored.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{GeminiError, Quota, StructuredPrompt};
use crate::domain::TaskType;

#[derive(Debug, Deserialize)]
pub(super) struct ListModelsResponse {
    #[serde(default)]
    pub(super) models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Model {
    pub(super) name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContentRequest<'a> {
    contents: [Content<'a>; 1],
    system_instruction: Content<'a>,
    generation_config: GenerationConfig<'a>,
}

#[derive(Debug, Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: [TextPart<'a>; 1],
}

#[derive(Debug, Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

impl<'a> Content<'a> {
    fn user(text: &'a str) -> Self {
        Self {
            role: "user",
            parts: [TextPart { text }],
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    response_mime_type: &'static str,
    response_json_schema: &'a Value,
    max_output_tokens: u32,
}

impl<'a> GenerateContentRequest<'a> {
    pub(super) fn structured(prompt: &StructuredPrompt<'a>, max_output_tokens: u32) -> Self {
        Self {
            contents: [Content::user(prompt.user)],
            system_instruction: Content::user(prompt.system),
            generation_config: GenerationConfig {
                response_mime_type: "application/json",
                response_json_schema: prompt.schema,
                max_output_tokens,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    // Absent when thinking used up the output budget (MAX_TOKENS).
    #[serde(default)]
    parts: Vec<ResponsePart>,
}

#[derive(Debug, Deserialize)]
struct ResponsePart {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

impl GenerateContentResponse {
    /// The answer's text (thought summaries left out), or why there is none.
    pub(super) fn into_text(self) -> Result<String, GeminiError> {
        if let Some(reason) = self.prompt_feedback.and_then(|f| f.block_reason) {
            return Err(GeminiError::UnusableOutput(format!(
                "prompt blocked: {reason}"
            )));
        }
        let Some(candidate) = self.candidates.into_iter().next() else {
            return Err(GeminiError::UnusableOutput("no candidates".to_owned()));
        };
        let reason = candidate.finish_reason.unwrap_or_default();
        if reason != "STOP" {
            // MAX_TOKENS (truncated), SAFETY, RECITATION, ...: not a complete answer.
            return Err(GeminiError::UnusableOutput(format!(
                "finish reason {reason}"
            )));
        }
        let text: String = candidate
            .content
            .map(|c| c.parts)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.thought)
            .filter_map(|p| p.text)
            .collect();
        if text.trim().is_empty() {
            return Err(GeminiError::UnusableOutput("empty answer".to_owned()));
        }
        Ok(text)
    }
}

#[derive(Debug, Serialize)]
pub(super) struct BatchEmbedRequest<'a> {
    requests: Vec<EmbedRequest<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedRequest<'a> {
    /// `models/NAME`, the same model as in the URL (Gemini checks).
    model: &'a str,
    content: Content<'a>,
    task_type: TaskType,
    output_dimensionality: u32,
}

impl<'a> BatchEmbedRequest<'a> {
    pub(super) fn new(
        model: &'a str,
        texts: &'a [String],
        task_type: TaskType,
        dimensions: u32,
    ) -> Self {
        Self {
            requests: texts
                .iter()
                .map(|text| EmbedRequest {
                    model,
                    content: Content::user(text),
                    task_type,
                    output_dimensionality: dimensions,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct BatchEmbedResponse {
    #[serde(default)]
    pub(super) embeddings: Vec<Embedding>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Embedding {
    #[serde(default)]
    pub(super) values: Vec<f32>,
}

/// Google's error envelope: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// Decodes a 2xx body as `T`, or turns any other answer into a [`GeminiError`].
pub(super) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GeminiError> {
    let status = response.status();
    let body = response.bytes().await.map_err(GeminiError::transport)?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| GeminiError::Decode(format!("unexpected response body: {e}")));
    }
    Err(api_error(status.as_u16(), &body))
}

fn api_error(status: u16, body: &[u8]) -> GeminiError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(envelope) => {
            let details = &envelope.error.details;
            let quota = if details.iter().any(names_per_day_quota) {
                Quota::PerDay
            } else {
                Quota::PerMinute
            };
            GeminiError::from_status(
                status,
                envelope.error.status,
                envelope.error.message,
                details.iter().find_map(retry_delay),
                quota,
            )
        }
        Err(_) => GeminiError::from_status(
            status,
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            None,
            Quota::PerMinute,
        ),
    }
}

/// `RetryInfo.retryDelay`, a protobuf Duration string such as `"7s"` or `"34.4s"`.
fn retry_delay(detail: &serde_json::Value) -> Option<Duration> {
    if detail.get("@type")?.as_str()? != "type.googleapis.com/google.rpc.RetryInfo" {
        return None;
    }
    let seconds: f64 = detail
        .get("retryDelay")?
        .as_str()?
        .strip_suffix('s')?
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// A `QuotaFailure` whose violated quota is per day: waiting minutes will not help.
fn names_per_day_quota(detail: &serde_json::Value) -> bool {
    detail.get("@type").and_then(|t| t.as_str())
        == Some("type.googleapis.com/google.rpc.QuotaFailure")
        && detail
            .get("violations")
            .and_then(|v| v.as_array())
            .is_some_and(|violations| {
                violations.iter().any(|v| {
                    v.get("quotaId")
                        .and_then(|id| id.as_str())
                        .is_some_and(|id| id.contains("PerDay"))
                })
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_carries_its_retry_delay_and_quota_kind() {
        let body = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.5s"}]}}"#;
        match api_error(429, body) {
            GeminiError::RateLimited {
                retry_delay, quota, ..
            } => {
                assert_eq!(retry_delay, Some(Duration::from_millis(34_500)));
                assert_eq!(quota, Quota::PerDay);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_non_json_error_body_is_kept_short() {
        let body = vec![b'x'; 10_000];
        match api_error(502, &body) {
            GeminiError::Unavailable { message, .. } => assert_eq!(message.len(), 200),
            other => panic!("unexpected {other:?}"),
        }
    }
}
