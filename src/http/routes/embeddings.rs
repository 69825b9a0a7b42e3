//! `POST /api/embeddings`: raw vectors for clients that want them.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::Caller;
use crate::clients::gemini::TaskType;
use crate::error::ApiError;
use crate::http::extract::JsonObject;
use crate::resilience::Deadline;
use crate::state::AppState;

/// Longest text accepted (Gemini embeds up to 2,048 tokens, about 8,000 characters).
pub const MAX_TEXT_CHARS: usize = 8_000;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/embeddings", post(embed))
}

/// Body of `POST /api/embeddings`.
#[derive(Debug, Serialize)]
pub struct EmbeddingsResponse {
    model: String,
    dimensions: u32,
    embeddings: Vec<Vec<f32>>,
}

async fn embed(
    State(state): State<AppState>,
    _caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let texts = body.required_str_array(
        "texts",
        state.settings.batch.max_embed_texts,
        MAX_TEXT_CHARS,
        |max| format!("at most {max} texts per request"),
    )?;
    let task_type = match body.optional_str("task_type", 64)? {
        None => TaskType::RetrievalDocument,
        Some(name) => parse_task_type(&name)?,
    };
    let embeddings = state.embeddings.embed(texts, task_type, deadline).await?;
    Ok(Json(EmbeddingsResponse {
        model: state.settings.gemini.embedding_model.clone(),
        dimensions: state.settings.gemini.embedding_dimension,
        embeddings,
    }))
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
