//! Proposed changes to the catalog: `POST/GET /api/proposals`,
//! `GET /api/proposals/{id}`, `POST /api/proposals/{id}/approve` and
//! `/reject`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::{MAX_NOTE_CHARS, worded_enum};
use crate::auth::Caller;
use crate::domain::{
    Id, Metadata, OptionalProductUrl, OptionalText, Price, PricingType, Proposal, ProposalDraft,
    ProposalStatus, ProposalType,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{JsonBody, JsonBodyOrNone, Params, from_query_or_empty};
use crate::http::routes::common::{PageQuery, PathId, page_body};
use crate::resilience::Deadline;
use crate::state::AppState;

/// Routes of this module.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/proposals", post(create_proposal).get(list_proposals))
        .route("/api/proposals/{id}", get(get_proposal))
        .route("/api/proposals/{id}/approve", post(approve_proposal))
        .route("/api/proposals/{id}/reject", post(reject_proposal))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    create_proposal,
    list_proposals,
    get_proposal,
    approve_proposal,
    reject_proposal
))]
pub(super) struct Api;

worded_enum!(
    /// A `proposal_type`: another value is an unknown variant, which the
    /// request reader words as the original did (`Invalid proposal_type.
    /// Must be one of: ADD_ITEM, ...`).
    Kind(ProposalType),
    not_a_proposal_type
);

fn not_a_proposal_type<E: serde::de::Error>(text: &str) -> E {
    E::unknown_variant(text, ProposalType::NAMES)
}

/// Body of `POST /api/proposals` (and of a review's `create_proposal`):
/// the item fields follow the catalog's create rules; blank texts mean absent.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewProposalBody {
    proposal_type: Kind,
    #[serde(default)]
    item_name: OptionalText<255>,
    #[serde(default)]
    item_description: OptionalText<10_000>,
    #[serde(default)]
    item_category: OptionalText<100>,
    item_metadata: Option<Metadata>,
    item_price: Option<Price>,
    item_pricing_type: Option<PricingType>,
    #[serde(default)]
    item_product_url: OptionalProductUrl,
    #[serde(default)]
    item_vendor: OptionalText<255>,
    #[serde(default)]
    item_sku: OptionalText<100>,
    /// The item to replace or deprecate; required for those, and it must be
    /// an item of the caller's organisation.
    replacing_item_id: Option<Id>,
    /// The request this answers, of the caller's organisation.
    request_id: Option<Id>,
}

impl NewProposalBody {
    /// The draft, after what each type requires (the document's `oneOf`;
    /// the database checks it again for direct callers).
    pub(super) fn into_draft(
        self,
    ) -> Result<(ProposalType, ProposalDraft, Option<Uuid>), ApiError> {
        let kind = self.proposal_type.0;
        let needs_name = matches!(kind, ProposalType::AddItem | ProposalType::ReplaceItem);
        let needs_item = matches!(
            kind,
            ProposalType::ReplaceItem | ProposalType::DeprecateItem
        );
        if needs_name && self.item_name.is_absent() {
            return Err(ApiError::BadRequest(format!(
                "item_name is required for {kind}"
            )));
        }
        if needs_item && self.replacing_item_id.is_none() {
            return Err(ApiError::BadRequest(format!(
                "replacing_item_id is required for {kind}"
            )));
        }
        let draft = ProposalDraft {
            item_name: self.item_name.into_option(),
            item_description: self.item_description.into_option(),
            item_category: self.item_category.into_option(),
            item_metadata: self.item_metadata,
            item_price: self.item_price,
            item_pricing_type: self.item_pricing_type,
            item_product_url: self.item_product_url.into_option(),
            item_vendor: self.item_vendor.into_option(),
            item_sku: self.item_sku.into_option(),
            replacing_item_id: self.replacing_item_id.map(|id| id.0),
        };
        Ok((kind, draft, self.request_id.map(|id| id.0)))
    }
}

page_body!(
    /// Body of `GET /api/proposals`.
    pub(super) ProposalList { proposals: Proposal }
);

/// Proposes a change to the catalog (reviewers and admins).
#[utoipa::path(post, path = "/api/proposals", tag = "procurement",
    request_body = NewProposalBody,
    responses(
        (status = 201, description = "The proposal, pending", body = Proposal),
        (status = 403, description = "Not a reviewer or admin", body = ErrorEnvelope),
    ))]
async fn create_proposal(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    JsonBody(body): JsonBody<NewProposalBody>,
) -> Result<(StatusCode, Json<Proposal>), ApiError> {
    let (kind, draft, request_id) = body.into_draft()?;
    let proposal = state
        .procurement
        .create_proposal(&caller, kind, &draft, request_id, deadline)
        .await?;
    Ok((StatusCode::CREATED, Json(proposal)))
}

/// Query of `GET /api/proposals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ProposalListQuery {
    /// `pending`, `approved`, `rejected` or `merged`; every status when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = ProposalStatus::filter_schema)]
    status: Option<ProposalStatus>,
}

/// The caller's organisation's proposals, newest first, a page at a time.
#[utoipa::path(get, path = "/api/proposals", tag = "procurement",
    params(ProposalListQuery, PageQuery),
    responses((status = 200, description = "One page of proposals", body = ProposalList)))]
async fn list_proposals(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<ProposalListQuery>,
    Params(page): Params<PageQuery>,
) -> Result<Json<ProposalList>, ApiError> {
    let page = state
        .procurement
        .list::<Proposal>(&caller, &query.status, page.into(), deadline)
        .await?;
    Ok(Json(page.into()))
}

/// One proposal of the caller's organisation.
#[utoipa::path(get, path = "/api/proposals/{id}", tag = "procurement",
    params(("id" = Uuid, Path, description = "The proposal's id")),
    responses(
        (status = 200, description = "The proposal", body = Proposal),
        (status = 403, description = "Another organisation's proposal", body = ErrorEnvelope),
        (status = 404, description = "No such proposal", body = ErrorEnvelope),
    ))]
async fn get_proposal(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    PathId(id, _): PathId<Proposal>,
) -> Result<Json<Proposal>, ApiError> {
    let proposal = state.procurement.get(&caller, id, deadline).await?;
    Ok(Json(proposal))
}

/// Body of approve and reject; no body at all means none of these.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(super) struct DecisionBody {
    #[serde(default)]
    review_notes: OptionalText<{ MAX_NOTE_CHARS }>,
}

/// Approves a pending proposal (reviewers and admins): the item is
/// embedded, then merged into the catalog in one transaction.
#[utoipa::path(post, path = "/api/proposals/{id}/approve", tag = "procurement",
    params(("id" = Uuid, Path, description = "The proposal's id")),
    request_body(content = Option<DecisionBody>, description = "Optional: no body at all means no notes"),
    responses(
        (status = 200, description = "The merged proposal", body = Proposal),
        (status = 403, description = "Not a reviewer, or another organisation's proposal", body = ErrorEnvelope),
        (status = 404, description = "No such proposal", body = ErrorEnvelope),
        (status = 409, description = "The proposal is not pending", body = ErrorEnvelope),
        (status = 503, description = "Gemini unavailable: nothing was written", body = ErrorEnvelope),
    ))]
async fn approve_proposal(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    PathId(id, _): PathId<Proposal>,
    JsonBodyOrNone(body): JsonBodyOrNone<DecisionBody>,
) -> Result<Json<Proposal>, ApiError> {
    let notes = body.review_notes.into_option();
    let proposal = state
        .procurement
        .approve_proposal(&caller, id, notes.as_deref(), deadline)
        .await?;
    Ok(Json(proposal))
}

/// Rejects a pending proposal (reviewers and admins).
#[utoipa::path(post, path = "/api/proposals/{id}/reject", tag = "procurement",
    params(("id" = Uuid, Path, description = "The proposal's id")),
    request_body(content = Option<DecisionBody>, description = "Optional: no body at all means no notes"),
    responses(
        (status = 200, description = "The rejected proposal", body = Proposal),
        (status = 403, description = "Not a reviewer, or another organisation's proposal", body = ErrorEnvelope),
        (status = 404, description = "No such proposal", body = ErrorEnvelope),
        (status = 409, description = "The proposal is not pending", body = ErrorEnvelope),
    ))]
async fn reject_proposal(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    PathId(id, _): PathId<Proposal>,
    JsonBodyOrNone(body): JsonBodyOrNone<DecisionBody>,
) -> Result<Json<Proposal>, ApiError> {
    let notes = body.review_notes.into_option();
    let proposal = state
        .procurement
        .reject_proposal(&caller, id, notes.as_deref(), deadline)
        .await?;
    Ok(Json(proposal))
}
