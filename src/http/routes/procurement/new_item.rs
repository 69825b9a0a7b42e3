//! `POST /api/catalog/request-new-item`: any member asks for a new item,
//! which becomes a pending ADD_ITEM proposal.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::MAX_NOTE_CHARS;
use crate::auth::Caller;
use crate::domain::{
    Metadata, OptionalProductUrl, OptionalText, Price, PricingType, Proposal, ProposalDraft, Text,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{InputRejection, JsonBody};
use crate::http::routes::products::EnrichmentBody;
use crate::resilience::Deadline;
use crate::services::procurement::NewItemRequest;
use crate::state::AppState;

/// Routes of this module.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/catalog/request-new-item", post(request_new_item))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(request_new_item))]
pub(super) struct Api;

/// Body of `POST /api/catalog/request-new-item`: the catalog's create rules;
/// blank texts (the original SDK's defaults) mean absent.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewItemRequestBody {
    name: Text<255>,
    #[serde(default)]
    description: OptionalText<10_000>,
    #[serde(default)]
    category: OptionalText<100>,
    #[serde(default)]
    vendor: OptionalText<255>,
    price: Option<Price>,
    pricing_type: Option<PricingType>,
    #[serde(default)]
    product_url: OptionalProductUrl,
    #[serde(default)]
    sku: OptionalText<100>,
    metadata: Option<Metadata>,
    /// Why the item is needed; kept with the proposal.
    #[serde(default)]
    justification: OptionalText<{ MAX_NOTE_CHARS }>,
    /// Let Gemini fill in what is not given; false when absent.
    use_ai_enrichment: Option<bool>,
}

/// Body of a `POST /api/catalog/request-new-item` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NewItemRequestAnswer {
    /// `New item request submitted for review`.
    message: &'static str,
    proposal: Proposal,
    /// What Gemini said, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    ai_enrichment: Option<EnrichmentBody>,
}

/// Asks for a new catalog item (any member): a pending ADD_ITEM proposal,
/// optionally filled in by Gemini, for a reviewer to approve.
#[utoipa::path(post, path = "/api/catalog/request-new-item", tag = "procurement",
    request_body = NewItemRequestBody,
    responses(
        (status = 201, description = "The proposal, pending", body = NewItemRequestAnswer),
        (status = 502, description = "Gemini answered twice with unusable data", body = ErrorEnvelope),
        (status = 503, description = "Gemini unavailable, after retries", body = ErrorEnvelope),
    ))]
async fn request_new_item(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    body: Result<JsonBody<NewItemRequestBody>, InputRejection>,
) -> Result<(StatusCode, Json<NewItemRequestAnswer>), ApiError> {
    // The original's words for this route.
    let JsonBody(body) = body.map_err(|e| e.unless_required("name", "Item name is required"))?;
    let request = NewItemRequest {
        draft: ProposalDraft {
            item_name: None,
            item_description: body.description.into_option(),
            item_category: body.category.into_option(),
            item_metadata: body.metadata,
            item_price: body.price,
            item_pricing_type: body.pricing_type,
            item_product_url: body.product_url.into_option(),
            item_vendor: body.vendor.into_option(),
            item_sku: body.sku.into_option(),
            replacing_item_id: None,
        },
        justification: body.justification.into_option(),
        use_ai_enrichment: body.use_ai_enrichment.unwrap_or(false),
    };
    caller.charge_gemini_work(&state, state.procurement.gemini_calls(&request))?;
    let (proposal, enrichment) = state
        .procurement
        .request_new_item(&caller, body.name.as_str(), request, deadline)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewItemRequestAnswer {
            message: "New item request submitted for review",
            proposal,
            ai_enrichment: enrichment.map(EnrichmentBody::from),
        }),
    ))
}
