//! `models.list` and `models.get` over a fixed catalogue, under `v1beta` and `v1`.

use std::sync::Arc;

use axum::extract::{Path, Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::google_error::GoogleError;

const VERSIONS: [&str; 2] = ["v1beta", "v1"];

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{version}/models", get(list))
        .route("/{version}/models/{model}", get(get_model))
}

/// The counter name of a request: `models.list`, `models.get`, or the custom
/// method after `:` (`generateContent`, `batchEmbedContents`, ...).
pub(crate) fn method_name(request: &Request) -> String {
    let path = request.uri().path();
    match path.rsplit_once(':') {
        Some((_, method)) => method.to_owned(),
        None if path.trim_end_matches('/').ends_with("/models") => "models.list".to_owned(),
        None => "models.get".to_owned(),
    }
}

/// The catalogue: chat models first, then embedding models.
fn catalogue() -> Vec<Value> {
    let chat = |id: &str, display: &str, description: &str| {
        json!({
            "name": format!("models/{id}"),
            "version": "001",
            "displayName": display,
            "description": description,
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": true,
        })
    };
    let embedding = |id: &str, version: &str, display: &str, limit: u32| {
        json!({
            "name": format!("models/{id}"),
            "version": version,
            "displayName": display,
            "description": "Obtain a distributed representation of a text.",
            "inputTokenLimit": limit,
            "outputTokenLimit": 1,
            "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"],
        })
    };
    vec![
        chat(
            "gemini-3-flash-preview",
            "Gemini 3 Flash Preview",
            "Fast frontier-class multimodal model.",
        ),
        chat(
            "gemini-2.5-flash",
            "Gemini 2.5 Flash",
            "Stable mid-size multimodal model with thinking.",
        ),
        chat(
            "gemini-2.5-flash-lite",
            "Gemini 2.5 Flash-Lite",
            "Small, low-latency model.",
        ),
        embedding("gemini-embedding-001", "001", "Gemini Embedding 001", 2048),
        embedding("gemini-embedding-2", "2", "Gemini Embedding 2", 8192),
    ]
}

fn check_version(version: &str) -> Result<(), GoogleError> {
    if VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(GoogleError::not_found("Method not found."))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    page_size: Option<usize>,
    page_token: Option<String>,
}

/// `pageSize` defaults to 50 and is capped at 1000; `nextPageToken` is left out on the last page.
async fn list(Path(version): Path<String>, Query(params): Query<ListParams>) -> Response {
    if let Err(e) = check_version(&version) {
        return e.into_response();
    }
    let models = catalogue();
    let size = params.page_size.unwrap_or(50).clamp(1, 1000);
    let start = match params.page_token.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(offset)) if offset <= models.len() => offset,
        Some(_) => {
            return GoogleError::new(axum::http::StatusCode::BAD_REQUEST, "Invalid page token.")
                .into_response();
        }
    };
    let end = (start + size).min(models.len());
    let mut body = json!({ "models": models[start..end] });
    if end < models.len() {
        body["nextPageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}

async fn get_model(Path((version, model)): Path<(String, String)>) -> Response {
    if let Err(e) = check_version(&version) {
        return e.into_response();
    }
    let name = format!("models/{model}");
    match catalogue().into_iter().find(|m| m["name"] == name.as_str()) {
        Some(found) => Json(found).into_response(),
        None => GoogleError::not_found(format!(
            "{name} is not found for API version {version}, or is not supported for get. \
             Call ListModels to see the list of available models and their supported methods."
        ))
        .into_response(),
    }
}
