//! Client for the Gemini REST API (Generative Language API), called directly
//! with reqwest: <https://ai.google.dev/api>.
//!
//! Operations: list models (readiness), generate structured JSON with
//! `responseJsonSchema`, and embed texts through `batchEmbedContents` (at most
//! 100 per call, vectors normalised). The API key travels in the
//! `x-goog-api-key` header, never in a URL, so it cannot end up in logs.
//! Failures become [`GeminiError`], which says whether a retry can help.

mod error;
mod wire;

pub use error::{GeminiCallError, GeminiError, Quota};

use std::sync::Arc;

use reqwest::Url;
use serde_json::Value;

use crate::config::{GeminiSettings, Secret};
use crate::domain::TaskType;
use crate::resilience::{BreakerState, Deadline, Dependency};

/// API version used for every call; `v1beta` carries structured output and batch embeddings.
const API_VERSION: &str = "v1beta";
/// Gemini rejects `batchEmbedContents` calls with more entries than this.
pub const MAX_EMBED_BATCH: usize = 100;
/// Cap on generated tokens per call (thinking included), bounding cost and latency.
const MAX_OUTPUT_TOKENS: u32 = 4096;

/// A prompt for structured generation.
#[derive(Debug, Clone)]
pub struct StructuredPrompt<'a> {
    /// Instructions that frame every answer.
    pub system: &'a str,
    /// The request itself.
    pub user: &'a str,
    /// JSON Schema the answer must follow (sent as `responseJsonSchema`).
    pub schema: &'a Value,
}

/// A handle to the Gemini API; cheap to clone.
#[derive(Debug, Clone)]
pub struct GeminiClient {
    http: reqwest::Client,
    base_url: Url,
    api_key: Secret,
    model: String,
    embedding_model: String,
    embedding_dimension: u32,
    policy: Arc<Dependency>,
}

impl GeminiClient {
    /// A client for the configured base URL, key and models.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: &GeminiSettings, policy: Arc<Dependency>) -> Result<Self, GeminiError> {
        let http = super::http_client(settings.timeout).map_err(GeminiError::transport)?;
        Ok(Self {
            http,
            base_url: settings.base_url.clone(),
            api_key: settings.api_key.clone(),
            model: settings.model.clone(),
            embedding_model: settings.embedding_model.clone(),
            embedding_dimension: settings.embedding_dimension,
            policy,
        })
    }

    /// The Gemini breaker's state, for the readiness body.
    pub fn breaker_state(&self) -> BreakerState {
        self.policy.breaker_state()
    }

    /// The embedding model, as recorded with each stored vector (`models/...`).
    pub fn embedding_model_version(&self) -> String {
        format!("models/{}", self.embedding_model)
    }

    /// Lists up to `page_size` models (`models.list`); the readiness probe uses
    /// it to prove the key works and the API answers. One attempt, no retries,
    /// outside the breaker and concurrency limit (a probe must not queue
    /// behind traffic).
    ///
    /// # Errors
    /// [`GeminiCallError`] for transport failures, non-2xx answers or a
    /// passed deadline.
    pub async fn list_models(
        &self,
        page_size: u32,
        deadline: Deadline,
    ) -> Result<Vec<String>, GeminiCallError> {
        self.policy
            .probe(deadline, self.list_models_once(page_size))
            .await
    }

    async fn list_models_once(&self, page_size: u32) -> Result<Vec<String>, GeminiError> {
        let response = self
            .http
            .get(self.url("models")?)
            .query(&[("pageSize", page_size)])
            .header("x-goog-api-key", self.api_key.expose())
            .send()
            .await
            .map_err(GeminiError::transport)?;
        let list: wire::ListModelsResponse = wire::read_json(response).await?;
        Ok(list.models.into_iter().map(|m| m.name).collect())
    }

    /// Asks the enrichment model for a JSON answer following `prompt.schema`.
    /// The answer is parsed and checked for the schema's top-level required
    /// fields; anything else is [`GeminiError::UnusableOutput`].
    ///
    /// Retried under the Gemini policy when the failure can pass; unusable
    /// output is never retried here (the caller decides on a repair attempt).
    ///
    /// # Errors
    /// [`GeminiCallError`]: transport, API errors, unusable model output, an
    /// open breaker or a passed deadline.
    pub async fn generate_json(
        &self,
        prompt: &StructuredPrompt<'_>,
        deadline: Deadline,
    ) -> Result<Value, GeminiCallError> {
        self.policy
            .call(deadline, || self.generate_json_once(prompt))
            .await
    }

    async fn generate_json_once(
        &self,
        prompt: &StructuredPrompt<'_>,
    ) -> Result<Value, GeminiError> {
        let body = wire::GenerateContentRequest::structured(prompt, MAX_OUTPUT_TOKENS);
        let response = self
            .http
            .post(self.url(&format!("models/{}:generateContent", self.model))?)
            .header("x-goog-api-key", self.api_key.expose())
            .json(&body)
            .send()
            .await
            .map_err(GeminiError::transport)?;
        let answer: wire::GenerateContentResponse = wire::read_json(response).await?;
        let text = answer.into_text()?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| GeminiError::UnusableOutput(format!("answer is not valid JSON: {e}")))?;
        check_required(prompt.schema, &value)?;
        Ok(value)
    }

    /// Embeds up to [`MAX_EMBED_BATCH`] texts in one `batchEmbedContents`
    /// call: one vector per text, in order, with `EMBEDDING_DIMENSION` values,
    /// normalised to unit length (Gemini leaves reduced sizes unnormalised).
    ///
    /// # Errors
    /// [`GeminiCallError`]; more than [`MAX_EMBED_BATCH`] texts is a caller
    /// bug reported as [`GeminiError::Decode`] without calling Gemini.
    pub async fn embed_batch(
        &self,
        texts: &[String],
        task_type: TaskType,
        deadline: Deadline,
    ) -> Result<Vec<Vec<f32>>, GeminiCallError> {
        if texts.len() > MAX_EMBED_BATCH {
            return Err(GeminiCallError::Upstream(GeminiError::Decode(format!(
                "{} texts in one batch; Gemini takes at most {MAX_EMBED_BATCH}",
                texts.len()
            ))));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.policy
            .call(deadline, || self.embed_batch_once(texts, task_type))
            .await
    }

    async fn embed_batch_once(
        &self,
        texts: &[String],
        task_type: TaskType,
    ) -> Result<Vec<Vec<f32>>, GeminiError> {
        let model = self.embedding_model_version();
        let body = wire::BatchEmbedRequest::new(&model, texts, task_type, self.embedding_dimension);
        let response = self
            .http
            .post(self.url(&format!("{model}:batchEmbedContents"))?)
            .header("x-goog-api-key", self.api_key.expose())
            .json(&body)
            .send()
            .await
            .map_err(GeminiError::transport)?;
        let answer: wire::BatchEmbedResponse = wire::read_json(response).await?;
        let expected = self.embedding_dimension as usize;
        if answer.embeddings.len() != texts.len() {
            return Err(GeminiError::Decode(format!(
                "{} embeddings for {} texts",
                answer.embeddings.len(),
                texts.len()
            )));
        }
        answer
            .embeddings
            .into_iter()
            .map(|e| {
                if e.values.len() == expected {
                    normalised(e.values).ok_or_else(|| {
                        GeminiError::UnusableOutput(
                            "an embedding with no direction (zero or non-finite values)".to_owned(),
                        )
                    })
                } else {
                    Err(GeminiError::Decode(format!(
                        "embedding has {} values, expected {expected}",
                        e.values.len()
                    )))
                }
            })
            .collect()
    }

    fn url(&self, path: &str) -> Result<Url, GeminiError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{API_VERSION}/{path}"))
            .map_err(|e| GeminiError::Decode(format!("bad request URL: {e}")))
    }
}

/// Scales a vector to unit length; `None` for one that has no direction
/// (all zeros, or a non-finite value): its cosine distance to anything is
/// NaN, which would rank above every real match.
fn normalised(mut values: Vec<f32>) -> Option<Vec<f32>> {
    let norm = values
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return None;
    }
    for v in &mut values {
        *v = (f64::from(*v) / norm) as f32;
    }
    Some(values)
}

/// The schema's top-level `required` fields must be present and not null.
fn check_required(schema: &Value, value: &Value) -> Result<(), GeminiError> {
    let Some(object) = value.as_object() else {
        return Err(GeminiError::UnusableOutput(
            "answer is not a JSON object".to_owned(),
        ));
    };
    let missing: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|field| object.get(*field).is_none_or(Value::is_null))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(GeminiError::UnusableOutput(format!(
            "answer lacks required fields: {}",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_are_normalised_and_directionless_ones_refused() {
        let v = normalised(vec![3.0, 4.0]).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalised(vec![0.0, 0.0]), None);
        assert_eq!(normalised(vec![f32::NAN, 1.0]), None);
        assert_eq!(normalised(vec![f32::INFINITY, 1.0]), None);
    }

    #[test]
    fn missing_required_fields_make_the_output_unusable() {
        let schema = json!({"required": ["name", "vendor"]});
        assert!(check_required(&schema, &json!({"name": "x", "vendor": "y"})).is_ok());
        let err = check_required(&schema, &json!({"name": "x", "vendor": null})).unwrap_err();
        assert!(matches!(err, GeminiError::UnusableOutput(m) if m.contains("vendor")));
        assert!(check_required(&schema, &json!(["not", "an", "object"])).is_err());
    }
}
