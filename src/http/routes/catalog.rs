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
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Caller;
use crate::clients::supabase::{CatalogItem, NewItemRow};
use crate::error::ApiError;
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

async fn search(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    let query = body.required_str("query", MAX_QUERY_CHARS)?;
    let threshold = body.optional_number("threshold", 0.0, 1.0)?.unwrap_or(0.3);
    let limit = body.optional_integer("limit", 1, 100)?.unwrap_or(10);
    let limit = u32::try_from(limit).unwrap_or(10);
    let results = state
        .catalog
        .search(&caller, query, threshold, limit, deadline)
        .await?;
    Ok(Json(json!({ "results": results })))
}

/// Body of `GET /api/catalog/items`.
#[derive(Debug, Serialize)]
pub struct ItemList {
    items: Vec<CatalogItem>,
    next_cursor: Option<String>,
}

async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ItemList>, ApiError> {
    let Query(params) =
        query.map_err(|_| ApiError::BadRequest("query string is malformed".to_owned()))?;
    let status = match params.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(s) if STATUSES.contains(&s) => Some(s),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "status must be active or deprecated".to_owned(),
            ));
        }
    };
    let limit = match params.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest("limit must be an integer between 1 and 1000".to_owned())
            })?,
    };
    let cursor = params
        .get("cursor")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let page = state
        .catalog
        .list(&caller, status, limit, cursor, deadline)
        .await?;
    Ok(Json(ItemList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

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

async fn create_item(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<CatalogItem>), ApiError> {
    caller.require_admin()?;
    let item = new_item(&mut body)?;
    let created = state.catalog.create(&caller, &item, deadline).await?;
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

async fn repair_embeddings(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
) -> Result<Json<RepairReport>, ApiError> {
    caller.require_admin()?;
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
        }
    }
}
