//! Client for the Gemini REST API (Generative Language API), called directly
//! with reqwest: <https://ai.google.dev/api>.
//!
//! The API key travels in the `x-goog-api-key` header, never in a URL, so it
//! cannot end up in logs. Non-2xx answers are parsed from Google's error
//! envelope into [`GeminiError`].

mod error;
mod wire;

pub use error::GeminiError;

use reqwest::Url;

use crate::config::{GeminiSettings, Secret};

/// API version used for every call; `v1beta` carries structured output and batch embeddings.
const API_VERSION: &str = "v1beta";

/// A handle to the Gemini API; cheap to clone.
#[derive(Debug, Clone)]
pub struct GeminiClient {
    http: reqwest::Client,
    base_url: Url,
    api_key: Secret,
}

impl GeminiClient {
    /// A client for the configured base URL and key.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: &GeminiSettings) -> Result<Self, GeminiError> {
        let http = super::http_client(settings.timeout).map_err(GeminiError::transport)?;
        Ok(Self {
            http,
            base_url: settings.base_url.clone(),
            api_key: settings.api_key.clone(),
        })
    }

    /// Lists up to `page_size` models (`models.list`); the readiness probe uses
    /// it to prove the key works and the API answers.
    ///
    /// # Errors
    /// [`GeminiError`] for transport failures and non-2xx answers.
    pub async fn list_models(&self, page_size: u32) -> Result<Vec<String>, GeminiError> {
        let url = self.url("models")?;
        let response = self
            .http
            .get(url)
            .query(&[("pageSize", page_size)])
            .header("x-goog-api-key", self.api_key.expose())
            .send()
            .await
            .map_err(GeminiError::transport)?;
        let list: wire::ListModelsResponse = wire::read_json(response).await?;
        Ok(list.models.into_iter().map(|m| m.name).collect())
    }

    fn url(&self, path: &str) -> Result<Url, GeminiError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{API_VERSION}/{path}"))
            .map_err(|e| GeminiError::Decode(format!("bad request URL: {e}")))
    }
}
