//! The procurement workflow's values: requests, proposals (and the draft a
//! new one starts from) and audit events, each decoded from its row and
//! answered as the response body.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::item::StoredJson;
use super::{
    Metadata, Price, PricingType, ProductUrl, ProposalStatus, ProposalType, RequestStatus,
    Timestamp,
};

/// A request for something the catalog lacks: a `requests` row, and the
/// answer's body (`RequestBody` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RequestBody, description = "A request, as stored.")]
pub struct Request {
    pub id: Uuid,
    pub org_id: Uuid,
    pub created_by: Uuid,
    pub search_query: String,
    // The search results the requester saw, as stored.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub search_results: Option<StoredJson>,
    pub justification: Option<String>,
    pub status: RequestStatus,
    pub reviewed_by: Option<Uuid>,
    pub review_notes: Option<String>,
    #[serde(default)]
    pub reviewed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A proposed change to the catalog: a `proposals` row, and the answer's
/// body (`ProposalBody` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ProposalBody, description = "A proposal, as stored.")]
pub struct Proposal {
    pub id: Uuid,
    pub org_id: Uuid,
    pub proposal_type: ProposalType,
    pub proposed_by: Uuid,
    pub request_id: Option<Uuid>,
    pub item_name: Option<String>,
    pub item_description: Option<String>,
    pub item_category: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub item_metadata: Option<StoredJson>,
    pub replacing_item_id: Option<Uuid>,
    pub status: ProposalStatus,
    pub reviewed_by: Option<Uuid>,
    pub review_notes: Option<String>,
    #[serde(default)]
    pub reviewed_at: Option<Timestamp>,
    #[serde(default)]
    pub merged_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub item_price: Option<f64>,
    pub item_pricing_type: Option<PricingType>,
    pub item_product_url: Option<String>,
    pub item_vendor: Option<String>,
    pub item_sku: Option<String>,
    /// Why a member asked for the item (request-new-item).
    #[serde(default)]
    pub justification: Option<String>,
}

/// Which workflow record an id names, where the two are handled alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A row of `requests`.
    Request,
    /// A row of `proposals`.
    Proposal,
}

impl Record {
    /// As the database's `procurement_row_exists` and the original's
    /// messages name it (`Access denied to request`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Proposal => "proposal",
        }
    }

    /// At the start of the original's messages (`Request not found: <id>`).
    pub const fn title(self) -> &'static str {
        match self {
            Self::Request => "Request",
            Self::Proposal => "Proposal",
        }
    }
}

/// A request or a proposal: which [`Record`] it is, and whose.
pub trait WorkflowRecord {
    /// Which record this type is.
    const RECORD: Record;
    /// The organisation the row belongs to.
    fn org_id(&self) -> Uuid;
}

impl WorkflowRecord for Request {
    const RECORD: Record = Record::Request;

    fn org_id(&self) -> Uuid {
        self.org_id
    }
}

impl WorkflowRecord for Proposal {
    const RECORD: Record = Record::Proposal;

    fn org_id(&self) -> Uuid {
        self.org_id
    }
}

/// A new proposal's fields, checked (the rules only the database can
/// check, such as whose item `replacing_item_id` is, are checked there).
#[derive(Debug, Clone, Default)]
pub struct ProposalDraft {
    pub item_name: Option<String>,
    pub item_description: Option<String>,
    pub item_category: Option<String>,
    pub item_metadata: Option<Metadata>,
    pub item_price: Option<Price>,
    pub item_pricing_type: Option<PricingType>,
    pub item_product_url: Option<ProductUrl>,
    pub item_vendor: Option<String>,
    pub item_sku: Option<String>,
    pub replacing_item_id: Option<Uuid>,
}

/// Which requests to list; every given filter must match.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub created_by: Option<Uuid>,
}

/// Which audit events to list; every given filter must match.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
}

/// One step of the workflow, as recorded: an `audit_events` row, and the
/// answer's entry (`AuditEventBody` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AuditEventBody, description = "One audit event.")]
pub struct AuditEvent {
    pub id: Uuid,
    pub org_id: Uuid,
    pub event_type: String,
    pub actor_id: Uuid,
    pub resource_type: String,
    pub resource_id: Uuid,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<StoredJson>,
    pub created_at: Timestamp,
}
