//! `POST /api/embeddings`: raw vectors for clients that want them.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Caller;
use crate::clients::gemini::{MAX_EMBED_BATCH, TaskType};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::JsonObject;
use crate::resilience::Deadline;
use crate::state::AppState;

/// Longest text accepted (Gemini embeds up to 2,048 tokens, about 8,000 characters).
pub const MAX_TEXT_CHARS: usize = 8_000;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/embeddings", post(embed))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(embed))]
pub struct Api;

/// Body of a `POST /api/embeddings` request.
#[derive(Debug, ToSchema)]
pub struct EmbeddingsRequest {
    /// Texts to embed, each at most 8,000 characters; at most
    /// `MAX_EMBED_TEXTS` of them (default 1,000).
    #[schema(min_items = 1)]
    texts: Vec<String>,
    /// How the vectors will be used (any letter case); `RETRIEVAL_DOCUMENT`
    /// when absent.
    task_type: Option<TaskType>,
}

/// Body of a `POST /api/embeddings` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    model: String,
    dimensions: u32,
    embeddings: Vec<Vec<f32>>,
}

/// Embedding vectors for texts, in request order, sent to Gemini in
/// chunks of 100.
#[utoipa::path(post, path = "/api/embeddings", tag = "embeddings",
    security(("bearer" = [])),
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "One vector per text", body = EmbeddingsResponse),
        (status = 503, description = "Gemini unavailable or rate-limited, after retries", body = ErrorEnvelope),
        (status = 504, description = "Gemini did not answer within the request deadline", body = ErrorEnvelope),
    ))]
async fn embed(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let request = EmbeddingsRequest::read(&mut body, state.settings.batch.max_embed_texts)?;
    caller.charge_gemini_work(&state, request.texts.len().div_ceil(MAX_EMBED_BATCH))?;
    let task_type = request.task_type.unwrap_or(TaskType::RetrievalDocument);
    let embeddings = state
        .embeddings
        .embed(request.texts, task_type, caller.org_id, deadline)
        .await?;
    Ok(Json(EmbeddingsResponse {
        model: state.settings.gemini.embedding_model.clone(),
        dimensions: state.settings.gemini.embedding_dimension,
        embeddings,
    }))
}

impl EmbeddingsRequest {
    fn read(body: &mut JsonObject, max_texts: usize) -> Result<Self, ApiError> {
        let texts = body.required_str_array("texts", max_texts, MAX_TEXT_CHARS, |max| {
            format!("at most {max} texts per request")
        })?;
        let task_type = body
            .optional_str("task_type", 64)?
            .map(|name| parse_task_type(&name))
            .transpose()?;
        Ok(Self { texts, task_type })
    }
}

fn parse_task_type(name: &str) -> Result<TaskType, ApiError> {
    serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase())).map_err(|_| {
        ApiError::BadRequest(
            "task_type must be one of RETRIEVAL_DOCUMENT, RETRIEVAL_QUERY, SEMANTIC_SIMILARITY, \
             CLASSIFICATION, CLUSTERING"
                .to_owned(),
        )
    })
}
