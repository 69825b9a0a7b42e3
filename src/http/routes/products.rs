//! `POST /api/products/enrich` and `POST /api/products/enrich-batch`.
//! With `Accept: application/x-ndjson` the batch streams one line per item as
//! it finishes (with its `index`), then a summary line.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::extract::JsonObject;
use crate::resilience::Deadline;
use crate::services::enrichment::{BatchItem, Enrichment, EnrichmentError, EnrichmentRequest};
use crate::state::AppState;

/// Longest product name accepted.
pub const MAX_PRODUCT_NAME_CHARS: usize = 500;
/// Longest category hint accepted (the catalog's own category limit).
pub const MAX_CATEGORY_CHARS: usize = 100;
/// Longest additional context accepted.
pub const MAX_CONTEXT_CHARS: usize = 2_000;

const NDJSON: &str = "application/x-ndjson";

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/products/enrich", post(enrich))
        .route("/api/products/enrich-batch", post(enrich_batch))
}

async fn enrich(
    State(state): State<AppState>,
    _caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<Json<Enrichment>, ApiError> {
    let request = EnrichmentRequest {
        product_name: body.required_str("product_name", MAX_PRODUCT_NAME_CHARS)?,
        category: body.optional_str("category", MAX_CATEGORY_CHARS)?,
        additional_context: body.optional_str("additional_context", MAX_CONTEXT_CHARS)?,
    };
    Ok(Json(state.enrichment.enrich(&request, deadline).await?))
}

async fn enrich_batch(
    State(state): State<AppState>,
    _caller: Caller,
    deadline: Deadline,
    headers: HeaderMap,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let names = body.required_str_array(
        "product_names",
        state.settings.batch.max_batch_size,
        MAX_PRODUCT_NAME_CHARS,
        |max| format!("Maximum {max} products per batch"),
    )?;
    let total = names.len();
    let mut items = state.enrichment.enrich_batch(names.clone(), deadline);
    if wants_ndjson(&headers) {
        return Ok(ndjson(items, total));
    }
    let mut results: Vec<Option<Value>> = vec![None; total];
    while let Some(item) = items.recv().await {
        let index = item.index;
        results[index] = Some(item_json(&item));
    }
    let results: Vec<Value> = results
        .into_iter()
        .zip(&names)
        .map(|(result, name)| {
            result.unwrap_or_else(|| failed_item(name, "enrichment did not complete"))
        })
        .collect();
    Ok(Json(json!({ "results": results })).into_response())
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(NDJSON))
}

/// One line per finished item, then `{"summary": {...}}`. The stream owns the
/// receiver: when the client goes away the body is dropped, the receiver with
/// it, and the batch stops calling Gemini.
fn ndjson(items: mpsc::Receiver<BatchItem>, total: usize) -> Response {
    struct Progress {
        items: mpsc::Receiver<BatchItem>,
        succeeded: usize,
        done: bool,
    }
    let start = Progress {
        items,
        succeeded: 0,
        done: false,
    };
    let lines = futures_util::stream::unfold(start, move |mut p| async move {
        if p.done {
            return None;
        }
        let mut line = match p.items.recv().await {
            Some(item) => {
                if item.outcome.is_ok() {
                    p.succeeded += 1;
                }
                let mut value = item_json(&item);
                value["index"] = json!(item.index);
                value.to_string()
            }
            None => {
                p.done = true;
                // Items that never arrived (the deadline passed) count as failed.
                json!({ "summary": {
                    "total": total,
                    "succeeded": p.succeeded,
                    "failed": total - p.succeeded,
                }})
                .to_string()
            }
        };
        line.push('\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), p))
    });
    let mut response = Body::from_stream(lines).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

/// An Enrichment, or the original's Enrichment-shaped error item.
fn item_json(item: &BatchItem) -> Value {
    match &item.outcome {
        Ok(enrichment) => serde_json::to_value(enrichment).unwrap_or(Value::Null),
        Err(error) => failed_item(&item.product_name, error.client_message()),
    }
}

fn failed_item(product_name: &str, message: &str) -> Value {
    json!({
        "name": product_name,
        "description": "",
        "category": "",
        "vendor": "",
        "price": null,
        "pricing_type": null,
        "product_url": null,
        "sku": null,
        "metadata": {},
        "confidence": "low",
        "error": message,
    })
}

impl From<EnrichmentError> for ApiError {
    fn from(error: EnrichmentError) -> Self {
        match error {
            EnrichmentError::Gemini(e) => e.into(),
            EnrichmentError::Unusable(detail) => Self::ExternalService {
                service: "gemini",
                detail,
            },
        }
    }
}
