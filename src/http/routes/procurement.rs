//! The procurement workflow, as the original served it: `POST/GET
//! /api/requests`, `GET /api/requests/{id}`, `POST /api/requests/{id}/review`,
//! `POST/GET /api/proposals`, `GET /api/proposals/{id}`,
//! `POST /api/proposals/{id}/approve` and `/reject`,
//! `POST /api/catalog/request-new-item` and `GET /api/admin/audit-log`.
//! Requests deserialize into the types below; the work is in
//! `services::procurement`.

use std::fmt;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use super::catalog::MAX_QUERY_CHARS;
use super::products::EnrichmentBody;
use crate::auth::Caller;
use crate::domain::{
    AuditEvent, AuditFilter, Count, Id, Metadata, OptionalProductUrl, OptionalText, PageCursor,
    Price, PricingType, Proposal, ProposalDraft, ProposalStatus, ProposalType, Request,
    RequestFilter, RequestStatus, ReviewDecision, Text, free_text, free_text_schema,
    printable_pattern,
};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{
    JsonBody, JsonBodyOrNone, Params, WHOLE_MESSAGE, from_query, from_query_or_empty,
};
use crate::resilience::Deadline;
use crate::services::page::Page;
use crate::services::procurement::NewItemRequest;
use crate::state::AppState;

/// Longest justification or review note accepted.
const MAX_NOTE_CHARS: usize = 5_000;
/// Most search results a request may carry.
const MAX_SEARCH_RESULTS: usize = 100;
/// Longest name, description or category of a search result.
const MAX_RESULT_TEXT_CHARS: usize = 1_000;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/requests", post(create_request).get(list_requests))
        .route("/api/requests/{id}", get(get_request))
        .route("/api/requests/{id}/review", post(review_request))
        .route("/api/proposals", post(create_proposal).get(list_proposals))
        .route("/api/proposals/{id}", get(get_proposal))
        .route("/api/proposals/{id}/approve", post(approve_proposal))
        .route("/api/proposals/{id}/reject", post(reject_proposal))
        .route("/api/catalog/request-new-item", post(request_new_item))
        .route("/api/admin/audit-log", get(audit_log))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    create_request,
    list_requests,
    get_request,
    review_request,
    create_proposal,
    list_proposals,
    get_proposal,
    approve_proposal,
    reject_proposal,
    request_new_item,
    audit_log
))]
pub struct Api;

fn path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Id>()
        .map(|id| id.0)
        .map_err(|_| ApiError::BadRequest(format!("Invalid {what} ID format")))
}

/// Reads an enumeration refusing other values with the original's message.
macro_rules! worded_enum {
    ($(#[$meta:meta])* $name:ident($inner:ty), $refusal:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        struct $name($inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                <$inner>::parse(&text).map(Self).ok_or_else(|| D::Error::custom($refusal))
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                <$inner as PartialSchema>::schema()
            }
        }

        impl ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                <$inner as ToSchema>::name()
            }
        }
    };
}

worded_enum!(
    /// A review's `status`, refused as the original did.
    Decision(ReviewDecision),
    "must be 'approved' or 'rejected'"
);

worded_enum!(
    /// A `proposal_type`, refused as the original did.
    Kind(ProposalType),
    format!(
        "{WHOLE_MESSAGE}Invalid proposal_type. Must be one of: {}",
        ProposalType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
    )
);

// ---- requests ----------------------------------------------------------

/// Body of `POST /api/requests`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRequestBody {
    /// What the requester searched for.
    search_query: Text<{ MAX_QUERY_CHARS }>,
    /// What the search showed them; `[]` when absent.
    #[serde(default)]
    search_results: SearchResults,
    /// Why the catalog needs it.
    #[serde(default)]
    justification: OptionalText<{ MAX_NOTE_CHARS }>,
}

/// The search results a request carries, each stored as `{name,
/// description, category, similarity_score}` plus `price`, `vendor` and
/// `sku` when given, as the original stored them.
#[derive(Debug, Default)]
struct SearchResults(Vec<Value>);

impl<'de> Deserialize<'de> for SearchResults {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Vec<Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
                let mut results = Vec::new();
                while let Some(SearchResult(result)) = seq.next_element()? {
                    if results.len() == MAX_SEARCH_RESULTS {
                        return Err(A::Error::custom(format!(
                            "must have at most {MAX_SEARCH_RESULTS} entries"
                        )));
                    }
                    results.push(result);
                }
                Ok(results)
            }
        }
        d.deserialize_seq(ListVisitor).map(Self)
    }
}

struct SearchResult(Value);

impl<'de> Deserialize<'de> for SearchResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Map<String, Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a dictionary")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entry = Map::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entry.insert(key, value);
                }
                Ok(entry)
            }
        }
        let entry = d.deserialize_map(EntryVisitor)?;
        let text = |key: &str, max: usize| -> Result<Option<String>, D::Error> {
            match entry.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => free_text(s, max)
                    .map(Some)
                    .map_err(|why| D::Error::custom(format!("{key} {why}"))),
                Some(_) => Err(D::Error::custom(format!("{key} must be a string"))),
            }
        };
        let number = |key: &str| -> Result<Option<Value>, D::Error> {
            match entry.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(n @ Value::Number(_)) => Ok(Some(n.clone())),
                Some(_) => Err(D::Error::custom(format!("{key} must be a number"))),
            }
        };
        let name = match entry.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                Text::<{ MAX_RESULT_TEXT_CHARS }>::parse(s)
                    .map_err(|why| D::Error::custom(format!("name {why}")))?,
            ),
            Some(_) => return Err(D::Error::custom("name must be a string")),
        }
        .ok_or_else(|| D::Error::custom("missing required field 'name'"))?;
        let mut stored = json!({
            "name": name.as_str(),
            "description": text("description", MAX_RESULT_TEXT_CHARS)?.unwrap_or_default(),
            "category": text("category", MAX_RESULT_TEXT_CHARS)?.unwrap_or_default(),
            "similarity_score": number("similarity_score")?.unwrap_or(json!(0.0)),
        });
        if let Some(price) = number("price")? {
            stored["price"] = price;
        }
        for key in ["vendor", "sku"] {
            if let Some(value) = text(key, 255)? {
                stored[key] = json!(value);
            }
        }
        Ok(Self(stored))
    }
}

impl PartialSchema for SearchResults {
    fn schema() -> RefOr<Schema> {
        let number =
            || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Null]));
        let entry = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "name",
                Ref::from_schema_name(Text::<{ MAX_RESULT_TEXT_CHARS }>::name()),
            )
            .required("name")
            .property("description", free_text_schema(MAX_RESULT_TEXT_CHARS))
            .property("category", free_text_schema(MAX_RESULT_TEXT_CHARS))
            .property("similarity_score", number())
            .property("price", number())
            .property("vendor", free_text_schema(255))
            .property("sku", free_text_schema(255));
        ArrayBuilder::new()
            .items(entry)
            .max_items(Some(MAX_SEARCH_RESULTS))
            .into()
    }
}

impl ToSchema for SearchResults {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        type Name = Text<{ MAX_RESULT_TEXT_CHARS }>;
        schemas.push((Name::name().into_owned(), Name::schema()));
    }
}

/// Body of `GET /api/requests`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    /// Newest first.
    requests: Vec<Request>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<PageCursor>,
}

/// Files a request for something the catalog lacks (any member).
#[utoipa::path(post, path = "/api/requests", tag = "procurement",
    security(("bearer" = [])),
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
            &Value::Array(body.search_results.0),
            justification.as_deref(),
            deadline,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// Query of `GET /api/requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestListQuery {
    /// `pending`, `approved` or `rejected`; every status when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = request_status_filter)]
    status: Option<RequestStatus>,
    /// Only requests by this user.
    #[serde(default, deserialize_with = "from_query")]
    created_by: Option<Id>,
    /// Rows per page, 1 to 1,000; 100 when absent.
    #[serde(default, deserialize_with = "from_query")]
    #[param(inline)]
    limit: Option<Count<1, 1000>>,
    /// `next_cursor` of the previous page; the first page when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = super::catalog::cursor_param_schema)]
    cursor: Option<PageCursor>,
}

fn request_status_filter() -> RefOr<Schema> {
    crate::domain::enum_schema(RequestStatus::ALL.iter().map(|s| s.as_str()).chain([""]))
}

fn proposal_status_filter() -> RefOr<Schema> {
    crate::domain::enum_schema(ProposalStatus::ALL.iter().map(|s| s.as_str()).chain([""]))
}

/// The caller's organisation's requests, newest first, a page at a time.
#[utoipa::path(get, path = "/api/requests", tag = "procurement",
    security(("bearer" = [])),
    params(RequestListQuery),
    responses((status = 200, description = "One page of requests", body = RequestList)))]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<RequestListQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let Page { rows, next_cursor } = state
        .procurement
        .list_requests(
            &caller,
            RequestFilter {
                status: query.status,
                created_by: query.created_by.map(|id| id.0),
            },
            page_size(query.limit),
            query.cursor,
            deadline,
        )
        .await?;
    Ok(Json(RequestList {
        requests: rows,
        next_cursor,
    }))
}

fn page_size(limit: Option<Count<1, 1000>>) -> usize {
    limit.map_or(100, |n| n.get() as usize)
}

/// One request of the caller's organisation.
#[utoipa::path(get, path = "/api/requests/{id}", tag = "procurement",
    security(("bearer" = [])),
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
    Path(id): Path<String>,
) -> Result<Json<Request>, ApiError> {
    let id = path_id(&id, "request")?;
    let request = state.procurement.get_request(&caller, id, deadline).await?;
    Ok(Json(request))
}

/// Body of `POST /api/requests/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewBody {
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
pub struct ReviewedBody {
    #[serde(flatten)]
    request: Request,
    #[serde(skip_serializing_if = "Option::is_none")]
    proposal: Option<Proposal>,
}

/// Approves or rejects a pending request (reviewers and admins); approving
/// with `create_proposal` creates the proposal in the same transaction.
#[utoipa::path(post, path = "/api/requests/{id}/review", tag = "procurement",
    security(("bearer" = [])),
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
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<Json<ReviewedBody>, ApiError> {
    let id = path_id(&id, "request")?;
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

// ---- proposals ---------------------------------------------------------

/// Body of `POST /api/proposals` (and of a review's `create_proposal`):
/// the item fields follow the catalog's create rules; blank texts mean absent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewProposalBody {
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
    fn into_draft(self) -> Result<(ProposalType, ProposalDraft, Option<Uuid>), ApiError> {
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

/// Body of `GET /api/proposals`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalList {
    /// Newest first.
    proposals: Vec<Proposal>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<PageCursor>,
}

/// Proposes a change to the catalog (reviewers and admins).
#[utoipa::path(post, path = "/api/proposals", tag = "procurement",
    security(("bearer" = [])),
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
pub struct ProposalListQuery {
    /// `pending`, `approved`, `rejected` or `merged`; every status when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = proposal_status_filter)]
    status: Option<ProposalStatus>,
    /// Rows per page, 1 to 1,000; 100 when absent.
    #[serde(default, deserialize_with = "from_query")]
    #[param(inline)]
    limit: Option<Count<1, 1000>>,
    /// `next_cursor` of the previous page; the first page when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = super::catalog::cursor_param_schema)]
    cursor: Option<PageCursor>,
}

/// The caller's organisation's proposals, newest first, a page at a time.
#[utoipa::path(get, path = "/api/proposals", tag = "procurement",
    security(("bearer" = [])),
    params(ProposalListQuery),
    responses((status = 200, description = "One page of proposals", body = ProposalList)))]
async fn list_proposals(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<ProposalListQuery>,
) -> Result<Json<ProposalList>, ApiError> {
    let Page { rows, next_cursor } = state
        .procurement
        .list_proposals(
            &caller,
            query.status,
            page_size(query.limit),
            query.cursor,
            deadline,
        )
        .await?;
    Ok(Json(ProposalList {
        proposals: rows,
        next_cursor,
    }))
}

/// One proposal of the caller's organisation.
#[utoipa::path(get, path = "/api/proposals/{id}", tag = "procurement",
    security(("bearer" = [])),
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
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    let id = path_id(&id, "proposal")?;
    let proposal = state
        .procurement
        .get_proposal(&caller, id, deadline)
        .await?;
    Ok(Json(proposal))
}

/// Body of approve and reject; no body at all means none of these.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DecisionBody {
    #[serde(default)]
    review_notes: OptionalText<{ MAX_NOTE_CHARS }>,
}

/// Approves a pending proposal (reviewers and admins): the item is
/// embedded, then merged into the catalog in one transaction.
#[utoipa::path(post, path = "/api/proposals/{id}/approve", tag = "procurement",
    security(("bearer" = [])),
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
    Path(id): Path<String>,
    JsonBodyOrNone(body): JsonBodyOrNone<DecisionBody>,
) -> Result<Json<Proposal>, ApiError> {
    let id = path_id(&id, "proposal")?;
    let notes = body.review_notes.into_option();
    let proposal = state
        .procurement
        .approve_proposal(&caller, id, notes.as_deref(), deadline)
        .await?;
    Ok(Json(proposal))
}

/// Rejects a pending proposal (reviewers and admins).
#[utoipa::path(post, path = "/api/proposals/{id}/reject", tag = "procurement",
    security(("bearer" = [])),
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
    Path(id): Path<String>,
    JsonBodyOrNone(body): JsonBodyOrNone<DecisionBody>,
) -> Result<Json<Proposal>, ApiError> {
    let id = path_id(&id, "proposal")?;
    let notes = body.review_notes.into_option();
    let proposal = state
        .procurement
        .reject_proposal(&caller, id, notes.as_deref(), deadline)
        .await?;
    Ok(Json(proposal))
}

// ---- request-new-item --------------------------------------------------

/// Body of `POST /api/catalog/request-new-item`: the catalog's create rules;
/// blank texts (the original SDK's defaults) mean absent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewItemRequestBody {
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
pub struct NewItemRequestAnswer {
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
    security(("bearer" = [])),
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
    body: Result<JsonBody<NewItemRequestBody>, ApiError>,
) -> Result<(StatusCode, Json<NewItemRequestAnswer>), ApiError> {
    let JsonBody(body) = body.map_err(|e| match e {
        // The original's words for this route.
        ApiError::BadRequest(m) if m == "name is required" => {
            ApiError::BadRequest("Item name is required".to_owned())
        }
        other => other,
    })?;
    let use_ai_enrichment = body.use_ai_enrichment.unwrap_or(false);
    if use_ai_enrichment {
        caller.charge_gemini_work(&state, 1)?;
    }
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
        use_ai_enrichment,
    };
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

// ---- audit log ---------------------------------------------------------

/// Query of `GET /api/admin/audit-log`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events of this type, e.g. `proposal.merged`.
    #[serde(default, deserialize_with = "from_query")]
    #[param(schema_with = query_text_schema)]
    event_type: Option<QueryText>,
    /// Only events about this kind of resource, e.g. `proposal`.
    #[serde(default, deserialize_with = "from_query")]
    #[param(schema_with = query_text_schema)]
    resource_type: Option<QueryText>,
    /// Only events about this resource.
    #[serde(default, deserialize_with = "from_query")]
    resource_id: Option<Id>,
    /// Rows per page, 1 to 1,000; 100 when absent.
    #[serde(default, deserialize_with = "from_query")]
    #[param(inline)]
    limit: Option<Count<1, 1000>>,
    /// `next_cursor` of the previous page; the first page when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = super::catalog::cursor_param_schema)]
    cursor: Option<PageCursor>,
}

/// Longest audit-log filter value.
const MAX_FILTER_CHARS: usize = 100;

/// A filter value: at most 100 characters, none of them control characters
/// (Postgres cannot compare text holding U+0000).
#[derive(Debug)]
struct QueryText(String);

impl std::str::FromStr for QueryText {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Checked as any text is, but compared exactly as given.
        free_text(s, MAX_FILTER_CHARS)?;
        Ok(Self(s.to_owned()))
    }
}

fn query_text_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_FILTER_CHARS))
        .pattern(Some(printable_pattern()))
        .into()
}

/// Body of `GET /api/admin/audit-log`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    /// Newest first.
    events: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<PageCursor>,
}

/// The caller's organisation's audit log, newest first (admins only).
#[utoipa::path(get, path = "/api/admin/audit-log", tag = "procurement",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of events", body = AuditLog),
        (status = 403, description = "Not an admin", body = ErrorEnvelope),
    ))]
async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<AuditQuery>,
) -> Result<Json<AuditLog>, ApiError> {
    let filter = AuditFilter {
        event_type: query.event_type.as_ref().map(|t| t.0.as_str()),
        resource_type: query.resource_type.as_ref().map(|t| t.0.as_str()),
        resource_id: query.resource_id.map(|id| id.0),
    };
    let Page { rows, next_cursor } = state
        .procurement
        .audit_log(
            &caller,
            &filter,
            page_size(query.limit),
            query.cursor,
            deadline,
        )
        .await?;
    Ok(Json(AuditLog {
        events: rows,
        next_cursor,
    }))
}
