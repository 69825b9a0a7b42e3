//! Requests for what the catalog lacks: `POST/GET /api/requests`,
//! `GET /api/requests/{id}` and `POST /api/requests/{id}/review`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::proposals::NewProposalBody;
use super::{MAX_NOTE_CHARS, worded_enum};
use crate::auth::Caller;
use crate::domain::{
    Id, OptionalText, Proposal, Request, RequestFilter, RequestStatus, ReviewDecision,
    SearchResults, Text,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{JsonBody, Params, from_query, from_query_or_empty};
use crate::http::routes::common::{MAX_QUERY_CHARS, PageQuery, PathId, page_body};
use crate::resilience::Deadline;
use crate::state::AppState;

/// Routes of this module.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/requests", post(create_request).get(list_requests))
        .route("/api/requests/{id}", get(get_request))
        .route("/api/requests/{id}/review", post(review_request))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(create_request, list_requests, get_request, review_request))]
pub(super) struct Api;

worded_enum!(
    /// A review's `status`, refused as the original did.
    Decision(ReviewDecision),
    not_a_decision
);

fn not_a_decision<E: serde::de::Error>(_: &str) -> E {
    E::custom("must be 'approved' or 'rejected'")
}

/// Body of `POST /api/requests`.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewRequestBody {
    /// What the requester searched for.
    search_query: Text<{ MAX_QUERY_CHARS }>,
    /// What the search showed them; `[]` when absent.
    #[serde(default)]
    search_results: SearchResults,
    /// Why the catalog needs it.
    #[serde(default)]
    justification: OptionalText<{ MAX_NOTE_CHARS }>,
}

page_body!(
    /// Body of `GET /api/requests`.
    pub(super) RequestList { requests: Request }
);

/// Files a request for something the catalog lacks (any member).
#[utoipa::path(post, path = "/api/requests", tag = "procurement",
    request_body = NewRequestBody,
    responses((status = 201, description = "The request, pending", body = Request)))]
async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    JsonBody(body): JsonBody<NewRequestBody>,
) -> Result<(StatusCode, Json<Request>), ApiError> {
    let justification = body.justification.into_option();
    let request = state
        .procurement
        .create_request(
            &caller,
            body.search_query.as_str(),
            &body.search_results,
            justification.as_deref(),
            deadline,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// Query of `GET /api/requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RequestListQuery {
    /// `pending`, `approved` or `rejected`; every status when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = RequestStatus::filter_schema)]
    status: Option<RequestStatus>,
    /// Only requests by this user.
    #[serde(default, deserialize_with = "from_query")]
    created_by: Option<Id>,
}

/// The caller's organisation's requests, newest first, a page at a time.
#[utoipa::path(get, path = "/api/requests", tag = "procurement",
    params(RequestListQuery, PageQuery),
    responses((status = 200, description = "One page of requests", body = RequestList)))]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<RequestListQuery>,
    Params(page): Params<PageQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let filter = RequestFilter {
        status: query.status,
        created_by: query.created_by.map(|id| id.0),
    };
    let page = state
        .procurement
        .list::<Request>(&caller, &filter, page.into(), deadline)
        .await?;
    Ok(Json(page.into()))
}

/// One request of the caller's organisation.
#[utoipa::path(get, path = "/api/requests/{id}", tag = "procurement",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = Request),
        (status = 403, description = "Another organisation's request", body = ErrorEnvelope),
        (status = 404, description = "No such request", body = ErrorEnvelope),
    ))]
async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    PathId(id, _): PathId<Request>,
) -> Result<Json<Request>, ApiError> {
    let request = state.procurement.get(&caller, id, deadline).await?;
    Ok(Json(request))
}

/// Body of `POST /api/requests/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct ReviewBody {
    /// `approved` or `rejected`.
    status: Decision,
    #[serde(default)]
    review_notes: OptionalText<{ MAX_NOTE_CHARS }>,
    /// A proposal to create with the approval, in the same transaction
    /// (ignored when rejecting).
    create_proposal: Option<NewProposalBody>,
}

/// A reviewed request, with the proposal created with it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReviewedBody {
    #[serde(flatten)]
    request: Request,
    #[serde(skip_serializing_if = "Option::is_none")]
    proposal: Option<Proposal>,
}

/// Approves or rejects a pending request (reviewers and admins); approving
/// with `create_proposal` creates the proposal in the same transaction.
#[utoipa::path(post, path = "/api/requests/{id}/review", tag = "procurement",
    params(("id" = Uuid, Path, description = "The request's id")),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "The reviewed request (and its proposal)", body = ReviewedBody),
        (status = 403, description = "Not a reviewer, or another organisation's request", body = ErrorEnvelope),
        (status = 404, description = "No such request", body = ErrorEnvelope),
        (status = 409, description = "The request is not pending", body = ErrorEnvelope),
    ))]
async fn review_request(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    PathId(id, _): PathId<Request>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<Json<ReviewedBody>, ApiError> {
    let notes = body.review_notes.into_option();
    let proposal = body
        .create_proposal
        .map(NewProposalBody::into_draft)
        .transpose()?;
    let (request, proposal) = state
        .procurement
        .review_request(
            &caller,
            id,
            body.status.0,
            notes.as_deref(),
            proposal.as_ref().map(|(kind, draft, _)| (*kind, draft)),
            deadline,
        )
        .await?;
    Ok(Json(ReviewedBody { request, proposal }))
}
