//! The model catalogue and the routes under `/{version}/models`, for `v1beta`
//! and `v1`: `models.list`, `models.get`, and the custom methods
//! `:generateContent`, `:embedContent` and `:batchEmbedContents`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::Fault;
use crate::google_error::GoogleError;
use crate::wire::{json_body, json_response};
use crate::{Shared, embed, generate};

/// Gemini accepts request bodies up to 20 MB.
const MAX_BODY: usize = 20 * 1024 * 1024;

const VERSIONS: [&str; 2] = ["v1beta", "v1"];

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{version}/models", get(list))
        .route(
            "/{version}/models/{model}",
            get(get_model).post(call_method),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The model id in a request path (`/v1beta/models/ID:method` → `ID`), if any.
pub(crate) fn model_in(request: &Request) -> Option<String> {
    let rest = request.uri().path().split_once("/models/")?.1;
    let id = rest.split(':').next()?;
    (!id.is_empty()).then(|| id.to_owned())
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

/// The models the emulator serves.
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
    // Two chat models, then the embedding models, then the rest: the order the
    // captured SDK listing pages through (two per page).
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
        embedding("gemini-embedding-001", "001", "Gemini Embedding 001", 2048),
        embedding("gemini-embedding-2", "2", "Gemini Embedding 2", 8192),
        chat(
            "gemini-3.5-flash",
            "Gemini 3.5 Flash",
            "Fast multimodal model with thinking levels.",
        ),
        chat(
            "gemini-2.5-flash-lite",
            "Gemini 2.5 Flash-Lite",
            "Small, low-latency model.",
        ),
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
    let start = match params.page_token.as_deref().map(decode_page_token) {
        None => 0,
        Some(Some(offset)) if offset <= models.len() => offset,
        Some(_) => {
            return GoogleError::invalid_argument("page_token", "Invalid page token.")
                .into_response();
        }
    };
    let end = (start + size).min(models.len());
    let mut body = json!({ "models": models[start..end] });
    if end < models.len() {
        body["nextPageToken"] = json!(STANDARD.encode(end.to_string()));
    }
    json_response(StatusCode::OK, &body)
}

/// Page tokens are opaque to clients; ours is the next offset, base64-encoded.
fn decode_page_token(token: &str) -> Option<usize> {
    let bytes = STANDARD.decode(token).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

async fn get_model(Path((version, model)): Path<(String, String)>) -> Response {
    if let Err(e) = check_version(&version) {
        return e.into_response();
    }
    match find_model(&version, &model, "get") {
        Ok(found) => json_response(StatusCode::OK, &found),
        Err(e) => e.into_response(),
    }
}

/// The catalogue entry for `model`, if it supports `method` (`get` accepts any model).
fn find_model(version: &str, model: &str, method: &str) -> Result<Value, GoogleError> {
    let name = format!("models/{model}");
    let supports = |m: &Value| {
        let methods = m["supportedGenerationMethods"].as_array();
        match method {
            "get" => true,
            "batchEmbedContents" => {
                methods.is_some_and(|ms| ms.iter().any(|x| x == "embedContent"))
            }
            _ => methods.is_some_and(|ms| ms.iter().any(|x| x == method)),
        }
    };
    catalogue()
        .into_iter()
        .find(|m| m["name"] == name.as_str() && supports(m))
        .ok_or_else(|| {
            GoogleError::not_found(format!(
                "{name} is not found for API version {version}, or is not supported for {method}. \
                 Call ListModels to see the list of available models and their supported methods."
            ))
        })
}

/// `POST /{version}/models/{model}:{method}`.
async fn call_method(
    State(shared): State<Arc<Shared>>,
    Path((version, model_and_method)): Path<(String, String)>,
    fault: Option<Extension<Fault>>,
    body: Bytes,
) -> Response {
    let result = (|| {
        check_version(&version)?;
        let Some((model, method)) = model_and_method.split_once(':') else {
            return Err(GoogleError::not_found("Method not found."));
        };
        find_model(&version, model, method)?;
        let body = json_body(&body)?;
        match method {
            "generateContent" => {
                generate::generate_content(model, &body, fault.as_ref().map(|f| &f.0))
            }
            "embedContent" => embed::embed_content(&body).map(|(answer, n)| {
                shared.count_embedded(n);
                answer
            }),
            "batchEmbedContents" => embed::batch_embed_contents(model, &body).map(|(answer, n)| {
                shared.count_embedded(n);
                answer
            }),
            _ => Err(GoogleError::not_found("Method not found.")),
        }
    })();
    match result {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(e) => e.into_response(),
    }
}
