//! `POST /api/embeddings`: raw vectors for clients that want them.

use std::borrow::Cow;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::auth::Caller;
use crate::domain::{TaskType, TextList};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::JsonBody;
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
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// Texts to embed, each at most 8,000 characters; at most
    /// `MAX_EMBED_TEXTS` of them (default 1,000; the document states the
    /// configured number).
    pub(crate) texts: TextList<{ MAX_TEXT_CHARS }>,
    /// How the vectors will be used; `RETRIEVAL_DOCUMENT` when absent.
    task_type: Option<AnyCaseTaskType>,
}

/// A [`TaskType`] in upper or lower case, as the original accepted it.
#[derive(Debug, Clone, Copy)]
struct AnyCaseTaskType(TaskType);

impl<'de> Deserialize<'de> for AnyCaseTaskType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = Cow::<str>::deserialize(d)?;
        TaskType::parse(&name.to_ascii_uppercase())
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom(TaskType::expected()))
    }
}

impl PartialSchema for AnyCaseTaskType {
    fn schema() -> RefOr<Schema> {
        let upper = TaskType::ALL.iter().map(|t| t.as_str().to_owned());
        let lower = TaskType::ALL
            .iter()
            .map(|t| t.as_str().to_ascii_lowercase());
        let names: Vec<String> = upper.chain(lower).collect();
        crate::domain::enum_schema(names.iter().map(String::as_str))
    }
}

impl ToSchema for AnyCaseTaskType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TaskType")
    }
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
    JsonBody(request): JsonBody<EmbeddingsRequest>,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let max_texts = state.settings.batch.max_embed_texts;
    if request.texts.len() > max_texts {
        return Err(ApiError::BadRequest(format!(
            "at most {max_texts} texts per request"
        )));
    }
    caller.charge_gemini_work(&state, state.embeddings.gemini_calls(request.texts.len()))?;
    let task_type = request
        .task_type
        .map_or(TaskType::RetrievalDocument, |t| t.0);
    let texts = request.texts.into_strings();
    let embeddings = state
        .embeddings
        .embed(texts, task_type, caller.org_id, deadline)
        .await?;
    Ok(Json(EmbeddingsResponse {
        model: state.settings.gemini.embedding_model.clone(),
        dimensions: state.settings.gemini.embedding_dimension,
        embeddings,
    }))
}
