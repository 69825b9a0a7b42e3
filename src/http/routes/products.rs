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
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Caller;
use crate::domain::{Confidence, OptionalText, PricingType, Text, TextList};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::JsonBody;
use crate::resilience::Deadline;
use crate::services::enrichment::{BatchItem, Enrichment, EnrichmentRequest};
use crate::state::AppState;

const NDJSON: &str = "application/x-ndjson";

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/products/enrich", post(enrich))
        .route("/api/products/enrich-batch", post(enrich_batch))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(enrich, enrich_batch))]
pub struct Api;

/// Longest product name accepted.
pub const MAX_PRODUCT_NAME_CHARS: usize = 500;
/// Longest category hint accepted (the catalog's own category limit).
pub const MAX_CATEGORY_CHARS: usize = 100;
/// Longest additional context accepted.
pub const MAX_CONTEXT_CHARS: usize = 2_000;

/// Body of `POST /api/products/enrich`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnrichRequest {
    /// The product name as the user wrote it.
    product_name: Text<{ MAX_PRODUCT_NAME_CHARS }>,
    /// A category hint.
    #[serde(default)]
    category: OptionalText<{ MAX_CATEGORY_CHARS }>,
    /// Extra context for disambiguation.
    #[serde(default)]
    additional_context: OptionalText<{ MAX_CONTEXT_CHARS }>,
}

/// Body of `POST /api/products/enrich-batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Product names, each as in a single enrichment; at most
    /// `MAX_BATCH_SIZE` of them (default 20; the document states the
    /// configured number).
    pub(crate) product_names: TextList<{ MAX_PRODUCT_NAME_CHARS }>,
}

/// Structured product data, in the original service's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrichmentBody {
    /// Standardised product name.
    name: String,
    /// One or two sentences.
    description: String,
    /// Product category.
    category: String,
    /// Manufacturer or main vendor.
    vendor: String,
    /// Price in USD, when known.
    price: Option<f64>,
    /// How the price is charged, when known.
    pricing_type: Option<PricingType>,
    /// Official product page, when known.
    product_url: Option<String>,
    /// SKU or model number, when known.
    sku: Option<String>,
    /// Brand, specs, features.
    #[schema(value_type = Object)]
    metadata: Map<String, Value>,
    /// How sure the model is that it knows this exact product.
    confidence: Confidence,
}

impl From<Enrichment> for EnrichmentBody {
    fn from(e: Enrichment) -> Self {
        Self {
            name: e.name,
            description: e.description,
            category: e.category,
            vendor: e.vendor,
            price: e.price,
            pricing_type: e.pricing_type,
            product_url: e.product_url,
            sku: e.sku,
            metadata: e.metadata,
            confidence: e.confidence,
        }
    }
}

/// Body of `POST /api/products/enrich-batch` as JSON: one result per name,
/// in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    results: Vec<BatchResult>,
}

/// An enrichment, or the original's enrichment-shaped failure: empty
/// strings, nulls, `confidence: low` and `error` saying why.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    #[serde(flatten)]
    enrichment: EnrichmentBody,
    /// Present only when this item failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    error: Option<&'static str>,
}

/// One line of the NDJSON batch stream: an item as it finishes, or the
/// closing summary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchLine {
    /// A finished item and its position in the request.
    Item {
        #[serde(flatten)]
        result: BatchResult,
        index: usize,
    },
    /// The last line.
    Summary { summary: BatchSummary },
}

/// Counts of a streamed batch; items that never finished count as failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchSummary {
    total: usize,
    succeeded: usize,
    failed: usize,
}

/// Structured product data for one product name, from Gemini.
#[utoipa::path(post, path = "/api/products/enrich", tag = "products",
    request_body = EnrichRequest,
    responses(
        (status = 200, description = "The product's data", body = EnrichmentBody),
        (status = 502, description = "Gemini answered twice with unusable data", body = ErrorEnvelope),
        (status = 503, description = "Gemini unavailable or rate-limited, after retries", body = ErrorEnvelope),
        (status = 504, description = "Gemini did not answer within the request deadline", body = ErrorEnvelope),
    ))]
async fn enrich(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    JsonBody(request): JsonBody<EnrichRequest>,
) -> Result<Json<EnrichmentBody>, ApiError> {
    let request = EnrichmentRequest {
        product_name: request.product_name.into_string(),
        category: request.category.into_option(),
        additional_context: request.additional_context.into_option(),
    };
    let enrichment = state
        .enrichment
        .enrich(&request, caller.org_id, deadline)
        .await?;
    Ok(Json(enrichment.into()))
}

/// Enriches up to `MAX_BATCH_SIZE` names at once, in parallel. A failed item
/// does not fail the batch. With `Accept: application/x-ndjson` each item is
/// streamed as it finishes.
#[utoipa::path(post, path = "/api/products/enrich-batch", tag = "products",
    request_body = BatchRequest,
    responses((status = 200, description = "One result per name",
        content((BatchResponse = "application/json"), (BatchLine = "application/x-ndjson")))))]
async fn enrich_batch(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    headers: HeaderMap,
    JsonBody(request): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    let max_names = state.settings.batch.max_batch_size;
    if request.product_names.len() > max_names {
        return Err(ApiError::BadRequest(format!(
            "Maximum {max_names} products per batch"
        )));
    }
    let product_names = request.product_names.into_strings();
    caller.charge_gemini_work(&state, state.enrichment.gemini_calls(&product_names))?;
    let total = product_names.len();
    let mut items = state
        .enrichment
        .enrich_batch(product_names.clone(), caller.org_id, deadline);
    if wants_ndjson(&headers) {
        return Ok(ndjson(items, total));
    }
    let mut results: Vec<Option<BatchResult>> = (0..total).map(|_| None).collect();
    while let Some(item) = items.recv().await {
        let index = item.index;
        results[index] = Some(BatchResult::from(item));
    }
    let results = results
        .into_iter()
        .zip(product_names)
        .map(|(result, name)| {
            result.unwrap_or_else(|| BatchResult::failed(name, "enrichment did not complete"))
        })
        .collect();
    Ok(Json(BatchResponse { results }).into_response())
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
        let line = match p.items.recv().await {
            Some(item) => {
                if item.outcome.is_ok() {
                    p.succeeded += 1;
                }
                let index = item.index;
                let result = BatchResult::from(item);
                BatchLine::Item { result, index }
            }
            None => {
                p.done = true;
                BatchLine::Summary {
                    summary: BatchSummary {
                        total,
                        succeeded: p.succeeded,
                        failed: total - p.succeeded,
                    },
                }
            }
        };
        let mut line = serde_json::to_vec(&line).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), p))
    });
    let mut response = Body::from_stream(lines).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

impl From<BatchItem> for BatchResult {
    fn from(item: BatchItem) -> Self {
        match item.outcome {
            Ok(enrichment) => Self {
                enrichment: enrichment.into(),
                error: None,
            },
            Err(error) => Self::failed(item.product_name, error.client_message()),
        }
    }
}

impl BatchResult {
    fn failed(product_name: String, message: &'static str) -> Self {
        Self {
            enrichment: EnrichmentBody {
                name: product_name,
                description: String::new(),
                category: String::new(),
                vendor: String::new(),
                price: None,
                pricing_type: None,
                product_url: None,
                sku: None,
                metadata: Map::new(),
                confidence: Confidence::Low,
            },
            error: Some(message),
        }
    }
}
