//! Gemini API settings: the key, where the API is, which models, and how
//! much of it this process and each organisation may use at once.

use std::time::Duration;

use reqwest::Url;

use super::Secret;
use super::reader::Reader;

/// Gemini API settings.
#[derive(Debug, Clone)]
pub struct GeminiSettings {
    /// API key (`GEMINI_API_KEY`), sent in the `x-goog-api-key` header.
    pub api_key: Secret,
    /// API root (`GEMINI_BASE_URL`), without the version segment.
    pub base_url: Url,
    /// Model for structured enrichment (`GEMINI_MODEL`).
    pub model: String,
    /// Model for embeddings (`EMBEDDING_MODEL`).
    pub embedding_model: String,
    /// Embedding size (`EMBEDDING_DIMENSION`); the database column is `vector(768)`.
    pub embedding_dimension: u32,
    /// Most Gemini calls in flight from this process at once (`GEMINI_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
    /// Share of those one organisation may hold, in percent (`GEMINI_TENANT_SHARE_PERCENT`).
    pub tenant_share_percent: u32,
    /// Timeout of one Gemini call (`GEMINI_TIMEOUT_SECONDS`).
    pub timeout: Duration,
}

impl GeminiSettings {
    /// `None` when a required setting is missing or invalid (recorded as a
    /// problem; every setting is read first, so all are reported at once).
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
        let api_key = r.header_secret("GEMINI_API_KEY");
        let base_url = r.url_or(
            "GEMINI_BASE_URL",
            "https://generativelanguage.googleapis.com",
        );
        let model = model_name(r, "GEMINI_MODEL", "gemini-3-flash-preview");
        let embedding_model = model_name(r, "EMBEDDING_MODEL", "gemini-embedding-001");
        let embedding_dimension = r.bounded("EMBEDDING_DIMENSION", 768, 128, 3072);
        let max_concurrency = r.bounded("GEMINI_MAX_CONCURRENCY", 32, 1, 10_000);
        let tenant_share_percent = r.bounded("GEMINI_TENANT_SHARE_PERCENT", 50, 1, 100);
        let timeout = r.seconds("GEMINI_TIMEOUT_SECONDS", 30, 1, 600);
        Some(Self {
            api_key: api_key?,
            base_url: base_url?,
            model,
            embedding_model,
            embedding_dimension,
            max_concurrency,
            tenant_share_percent,
            timeout,
        })
    }
}

/// A Gemini model id: it becomes a URL path segment, so keep it to safe characters.
fn model_name(r: &mut Reader<'_>, name: &str, default: &str) -> String {
    let value = r.raw(name).unwrap_or_else(|| default.to_owned());
    let value = value.strip_prefix("models/").unwrap_or(&value).to_owned();
    let valid = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !valid {
        r.problem(format!(
            "{name}: `{value}` is not a model id (letters, digits, `-`, `.`, `_`)"
        ));
    }
    value
}
