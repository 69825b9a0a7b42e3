//! The catalog: `POST /api/catalog/search`, `GET /api/catalog/items`,
//! `GET /api/catalog/items/{id}`, `POST /api/catalog/items` (admins) and
//! `POST /api/admin/embeddings/check` (admins). Requests deserialize into
//! the types below; the work is in `services::catalog`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{
    CatalogItem, Count, ItemDraft, ItemStatus, Metadata, OptionalProductUrl, OptionalText, Price,
    PricingType, SearchHit, Text, Threshold,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{JsonBody, Params, from_query_or_empty};
use crate::http::routes::common::{MAX_QUERY_CHARS, PageQuery, PathId, page_body};
use crate::resilience::Deadline;
use crate::services::catalog::RepairReport;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/catalog/search", post(search))
        .route("/api/catalog/items", get(list_items).post(create_item))
        .route("/api/catalog/items/{id}", get(get_item))
        .route("/api/admin/embeddings/check", post(repair_embeddings))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(search, list_items, get_item, create_item, repair_embeddings))]
pub struct Api;

/// Body of a `POST /api/catalog/search` request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// What to look for, in natural language.
    query: Text<{ MAX_QUERY_CHARS }>,
    /// Lowest cosine similarity returned; 0.3 when absent.
    threshold: Option<Threshold>,
    /// Most results returned; 10 when absent.
    limit: Option<Count<1, 100>>,
}

/// Body of a `POST /api/catalog/search` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Most similar first.
    results: Vec<SearchHit>,
}

page_body!(
    /// Body of `GET /api/catalog/items`.
    pub ItemList { items: CatalogItem }
);

/// Items of the caller's organisation closest in meaning to a query.
#[utoipa::path(post, path = "/api/catalog/search", tag = "catalog",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Matching items, most similar first", body = SearchResponse),
        (status = 503, description = "Gemini or the database unavailable, after retries", body = ErrorEnvelope),
    ))]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    JsonBody(request): JsonBody<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let hits = state
        .catalog
        .search(
            &caller,
            request.query.into_string(),
            request.threshold.unwrap_or_default().get(),
            request.limit.map_or(10, Count::get),
            deadline,
        )
        .await?;
    Ok(Json(SearchResponse { results: hits }))
}

/// Query of `GET /api/catalog/items`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `active` or `deprecated`; every status when absent or empty (as
    /// the original read `?status=`).
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = ItemStatus::filter_schema)]
    status: Option<ItemStatus>,
}

/// The caller's organisation's items, newest first, a page at a time.
#[utoipa::path(get, path = "/api/catalog/items", tag = "catalog",
    params(ListQuery, PageQuery),
    responses((status = 200, description = "One page of items", body = ItemList)))]
async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<ListQuery>,
    Params(page): Params<PageQuery>,
) -> Result<Json<ItemList>, ApiError> {
    let page = state
        .catalog
        .list(&caller, query.status, page.into(), deadline)
        .await?;
    Ok(Json(page.into()))
}

/// One item of the caller's organisation.
#[utoipa::path(get, path = "/api/catalog/items/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item", body = CatalogItem),
        (status = 403, description = "The item belongs to another organisation", body = ErrorEnvelope),
        (status = 404, description = "No such item", body = ErrorEnvelope),
    ))]
async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    PathId(id, _): PathId<CatalogItem>,
) -> Result<Json<CatalogItem>, ApiError> {
    Ok(Json(state.catalog.get(&caller, id, deadline).await?))
}

/// Body of `POST /api/catalog/items`: the original's create rules. Blank
/// optional texts (`""`, as the original's SDK sends) mean absent.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewCatalogItem)]
pub struct NewItemRequest {
    name: Text<255>,
    #[serde(default)]
    description: OptionalText<10_000>,
    #[serde(default)]
    category: OptionalText<100>,
    /// `active` when absent.
    status: Option<ItemStatus>,
    /// Rounded to cents.
    price: Option<Price>,
    pricing_type: Option<PricingType>,
    #[serde(default)]
    product_url: OptionalProductUrl,
    #[serde(default)]
    vendor: OptionalText<255>,
    #[serde(default)]
    sku: OptionalText<100>,
    metadata: Option<Metadata>,
}

impl From<NewItemRequest> for ItemDraft {
    fn from(request: NewItemRequest) -> Self {
        Self {
            name: request.name.into_string(),
            description: request.description.into_option(),
            category: request.category.into_option(),
            status: request.status.unwrap_or(ItemStatus::Active),
            price: request.price,
            pricing_type: request.pricing_type,
            product_url: request.product_url.into_option(),
            vendor: request.vendor.into_option(),
            sku: request.sku.into_option(),
            metadata: request.metadata.unwrap_or_default(),
        }
    }
}

/// Adds an item (admins only), embedded and stored in one transaction.
#[utoipa::path(post, path = "/api/catalog/items", tag = "catalog",
    request_body = NewItemRequest,
    responses(
        (status = 201, description = "The item as stored", body = CatalogItem),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
        (status = 409, description = "An item with these values exists", body = ErrorEnvelope),
    ))]
async fn create_item(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    JsonBody(request): JsonBody<NewItemRequest>,
) -> Result<(StatusCode, Json<CatalogItem>), ApiError> {
    let created = state
        .catalog
        .create(&caller, &request.into(), deadline)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Embeds every active item of the caller's organisation that has no
/// embedding by the current model (admins only).
#[utoipa::path(post, path = "/api/admin/embeddings/check", tag = "catalog",
    responses(
        (status = 200, description = "What was found and repaired (`complete` false when the deadline stopped it early)", body = RepairBody),
        (status = 409, description = "A repair of this organisation is already running; its progress is in `details.repair`", body = ErrorEnvelope),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
    ))]
async fn repair_embeddings(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
) -> Result<Json<RepairBody>, ApiError> {
    let report = state.catalog.repair_embeddings(&caller, deadline).await?;
    Ok(Json(report.into()))
}

/// What embedding repair found and did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepairBody {
    /// The org's active items.
    total_items: u64,
    /// Of those, items with an embedding by the current model, before repair.
    items_with_embeddings: u64,
    /// Items missing an embedding or with one by another model, before repair.
    items_without_embeddings: u64,
    /// Items embedded and written now.
    repaired: u64,
    /// Items that could not be embedded or written.
    failed: u64,
    /// Their ids.
    failed_items: Vec<Uuid>,
    /// False when the request's deadline stopped the repair before every
    /// item was tried: what was written stays written; run it again for
    /// the rest.
    complete: bool,
}

impl From<RepairReport> for RepairBody {
    fn from(report: RepairReport) -> Self {
        Self {
            total_items: report.total_items,
            items_with_embeddings: report.items_with_embeddings,
            items_without_embeddings: report.items_without_embeddings,
            repaired: report.repaired,
            failed: report.failed,
            failed_items: report.failed_items,
            complete: report.complete,
        }
    }
}
