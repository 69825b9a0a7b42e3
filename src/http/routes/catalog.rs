//! The catalog: `POST /api/catalog/search`, `GET /api/catalog/items`,
//! `GET /api/catalog/items/{id}`, `POST /api/catalog/items` (admins) and
//! `POST /api/admin/embeddings/check` (admins). Input is checked here with the
//! original's rules; the work is in `services::catalog`.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::clients::supabase::{CatalogItem, NewItemRow, SearchHit};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::JsonObject;
use crate::resilience::Deadline;
use crate::services::catalog::{CatalogError, RepairReport};
use crate::services::enrichment::PRICING_TYPES;
use crate::state::AppState;

/// Longest search query accepted.
pub const MAX_QUERY_CHARS: usize = 1_000;
const STATUSES: [&str; 2] = ["active", "deprecated"];

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
#[derive(Debug, ToSchema)]
pub struct SearchRequest {
    /// What to look for, in natural language.
    #[schema(min_length = 1, max_length = 1000)]
    query: String,
    /// Lowest cosine similarity returned; 0.3 when absent.
    #[schema(minimum = 0, maximum = 1)]
    threshold: Option<f64>,
    /// Most results returned; 10 when absent.
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// Body of a `POST /api/catalog/search` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Most similar first.
    results: Vec<SearchHit>,
}

/// Body of `GET /api/catalog/items`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    /// Newest first.
    items: Vec<CatalogItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Items of the caller's organisation closest in meaning to a query.
#[utoipa::path(post, path = "/api/catalog/search", tag = "catalog",
    security(("bearer" = [])),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Matching items, most similar first", body = SearchResponse),
        (status = 503, description = "Gemini or the database unavailable, after retries", body = ErrorEnvelope),
    ))]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<Json<SearchResponse>, ApiError> {
    let request = SearchRequest::read(&mut body)?;
    let results = state
        .catalog
        .search(
            &caller,
            request.query,
            request.threshold.unwrap_or(0.3),
            request.limit.unwrap_or(10),
            deadline,
        )
        .await?;
    Ok(Json(SearchResponse { results }))
}

impl SearchRequest {
    fn read(body: &mut JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            query: body.required_str("query", MAX_QUERY_CHARS)?,
            threshold: body.optional_number("threshold", 0.0, 1.0)?,
            limit: body
                .optional_integer("limit", 1, 100)?
                .and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// Query of `GET /api/catalog/items`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `active` or `deprecated`; every status when absent.
    status: Option<String>,
    /// Items per page, 1 to 1,000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl ListQuery {
    fn read(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let status = match params.get("status").map(String::as_str) {
            None | Some("") => None,
            Some(s) if STATUSES.contains(&s) => Some(s.to_owned()),
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "status must be active or deprecated".to_owned(),
                ));
            }
        };
        let limit = match params.get("limit") {
            None => None,
            Some(raw) => Some(
                raw.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(
                            "limit must be an integer between 1 and 1000".to_owned(),
                        )
                    })?,
            ),
        };
        let cursor = params.get("cursor").filter(|c| !c.is_empty()).cloned();
        Ok(Self {
            status,
            limit,
            cursor,
        })
    }
}

/// The caller's organisation's items, newest first, a page at a time.
#[utoipa::path(get, path = "/api/catalog/items", tag = "catalog",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "One page of items", body = ItemList)))]
async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ItemList>, ApiError> {
    let Query(params) =
        query.map_err(|_| ApiError::BadRequest("query string is malformed".to_owned()))?;
    let query = ListQuery::read(&params)?;
    let page = state
        .catalog
        .list(
            &caller,
            query.status.as_deref(),
            query.limit.unwrap_or(100),
            query.cursor.as_deref(),
            deadline,
        )
        .await?;
    Ok(Json(ItemList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One item of the caller's organisation.
#[utoipa::path(get, path = "/api/catalog/items/{id}", tag = "catalog",
    security(("bearer" = [])),
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
    Path(id): Path<String>,
) -> Result<Json<CatalogItem>, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::BadRequest("item id must be a UUID".to_owned()))?;
    Ok(Json(state.catalog.get(&caller, id, deadline).await?))
}

/// Adds an item (admins only), embedded and stored in one transaction.
#[utoipa::path(post, path = "/api/catalog/items", tag = "catalog",
    security(("bearer" = [])),
    request_body = NewItemRow,
    responses(
        (status = 201, description = "The item as stored", body = CatalogItem),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
        (status = 409, description = "An item with these values exists", body = ErrorEnvelope),
    ))]
async fn create_item(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<CatalogItem>), ApiError> {
    caller.require_admin()?;
    let item = new_item(&mut body)?;
    let created = state
        .catalog
        .create(&caller, &item, deadline)
        .await
        .inspect_err(|e| {
            if e.is_refusal() {
                // Demoted or removed since their membership was cached.
                state.memberships.forget(caller.user_id);
            }
        })?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The original's create-time rules.
fn new_item(body: &mut JsonObject) -> Result<NewItemRow, ApiError> {
    let name = body.required_str("name", 255)?;
    let description = body.optional_str("description", 10_000)?;
    let category = body.optional_str("category", 100)?;
    let vendor = body.optional_str("vendor", 255)?;
    let sku = body.optional_str("sku", 100)?;
    let product_url = body.optional_str("product_url", 2_048)?;
    if let Some(url) = &product_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ApiError::BadRequest(
                "product_url must start with http:// or https://".to_owned(),
            ));
        }
    }
    let price = body
        .optional_number("price", 0.0, 10_000_000.0)?
        .map(|p| (p * 100.0).round() / 100.0);
    let pricing_type = body.optional_str("pricing_type", 32)?;
    if let Some(p) = &pricing_type {
        if !PRICING_TYPES.contains(&p.as_str()) {
            return Err(ApiError::BadRequest(
                "pricing_type must be one of one_time, monthly, yearly, usage_based".to_owned(),
            ));
        }
    }
    let status = body.optional_str("status", 32)?;
    if let Some(s) = &status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::BadRequest(
                "status must be active or deprecated".to_owned(),
            ));
        }
    }
    let metadata = body
        .optional_object("metadata", 50, 64 * 1024)?
        .unwrap_or_default();
    Ok(NewItemRow {
        name,
        description,
        category,
        status,
        price,
        pricing_type,
        product_url,
        vendor,
        sku,
        metadata,
    })
}

/// Embeds every active item of the caller's organisation that has no
/// embedding by the current model (admins only).
#[utoipa::path(post, path = "/api/admin/embeddings/check", tag = "catalog",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What was found and repaired (`complete` false when the deadline stopped it early)", body = RepairReport),
        (status = 409, description = "A repair of this organisation is already running; its progress is in `details.repair`", body = ErrorEnvelope),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
    ))]
async fn repair_embeddings(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
) -> Result<Json<RepairReport>, ApiError> {
    caller.require_admin()?;
    // Repair writes with the service key, which row-level security does not
    // check: the admin role is read again, not taken from the cache.
    let current = state
        .memberships
        .lookup_fresh(caller.user_id, deadline)
        .await?;
    if !current.is_some_and(|m| m.org_id == caller.org_id && m.role == Role::Admin) {
        return Err(ApiError::Forbidden("admin role required".to_owned()));
    }
    Ok(Json(
        state.catalog.repair_embeddings(&caller, deadline).await?,
    ))
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Gemini(e) => e.into(),
            CatalogError::Database(e) => e.into(),
            CatalogError::NotFound => Self::NotFound("catalog item not found".to_owned()),
            CatalogError::OtherOrg => {
                Self::Forbidden("catalog item belongs to another organisation".to_owned())
            }
            CatalogError::InvalidCursor => Self::BadRequest("cursor is invalid".to_owned()),
            CatalogError::RepairRunning(progress) => Self::RepairRunning(progress),
        }
    }
}
