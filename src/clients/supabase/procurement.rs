//! The procurement workflow through PostgREST: requests, proposals, their
//! merge and the audit log. Every write is one call of a SQL function that
//! also writes the audit events (`db/migrations/0013`): as the caller, but
//! a merge with the service key and the reviewer as actor (0020). Reads run
//! as the caller so row-level security has the last word. Writes take
//! domain values; the `proposals` columns they become are named here alone.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::catalog::{rpc_params, vector_literal};
use super::page::{OrgRows, status_column};
use super::{ItemEmbedding, Rpc, SupabaseCallError, SupabaseClient};
use crate::domain::{
    AuditEvent, AuditFilter, Metadata, Price, PricingType, ProductUrl, Proposal, ProposalDraft,
    ProposalStatus, ProposalType, Record, Request, RequestFilter, RequestStatus, ReviewDecision,
    SearchResults,
};
use crate::resilience::Deadline;

/// A reviewed request, with the proposal created with it.
#[derive(Debug)]
pub(crate) struct ReviewedRow {
    pub request: Request,
    pub proposal: Option<Proposal>,
}

impl<'de> Deserialize<'de> for ReviewedRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Not `#[serde(flatten)]`: it buffers the object, and the stored raw
        // JSON inside (`search_results`) cannot be read back from a buffer.
        #[derive(Deserialize)]
        struct WithProposal {
            #[serde(default)]
            proposal: Option<Proposal>,
        }
        let raw = Box::<RawValue>::deserialize(d)?;
        let request = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        let WithProposal { proposal } =
            serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(Self { request, proposal })
    }
}

/// What a merge function answers: the original's keys, and the merged row.
#[derive(Debug, Deserialize)]
pub(crate) struct MergedRow {
    pub proposal: Proposal,
}

/// A proposal's fields in `proposals`' column names, as the workflow
/// functions read them from one object; absent fields left out.
fn proposal_columns(kind: ProposalType, draft: &ProposalDraft) -> Value {
    #[derive(Serialize)]
    struct Columns<'a> {
        proposal_type: ProposalType,
        item_name: Option<&'a str>,
        item_description: Option<&'a str>,
        item_category: Option<&'a str>,
        item_metadata: Option<&'a Map<String, Value>>,
        item_price: Option<Price>,
        item_pricing_type: Option<PricingType>,
        item_product_url: Option<&'a str>,
        item_vendor: Option<&'a str>,
        item_sku: Option<&'a str>,
        replacing_item_id: Option<Uuid>,
    }
    let columns = Columns {
        proposal_type: kind,
        item_name: draft.item_name.as_deref(),
        item_description: draft.item_description.as_deref(),
        item_category: draft.item_category.as_deref(),
        item_metadata: draft.item_metadata.as_ref().map(Metadata::as_map),
        item_price: draft.item_price,
        item_pricing_type: draft.item_pricing_type,
        item_product_url: draft.item_product_url.as_ref().map(ProductUrl::as_str),
        item_vendor: draft.item_vendor.as_deref(),
        item_sku: draft.item_sku.as_deref(),
        replacing_item_id: draft.replacing_item_id,
    };
    // Plain data: serialising it cannot fail.
    rpc_params(serde_json::to_value(columns).unwrap_or_default())
}

/// Which merge function approves a proposal of each type.
fn merge_function(kind: ProposalType) -> &'static str {
    match kind {
        ProposalType::AddItem => "merge_add_item_proposal",
        ProposalType::ReplaceItem => "merge_replace_item_proposal",
        ProposalType::DeprecateItem => "merge_deprecate_item_proposal",
    }
}

// Rows per PostgREST answer when listing, from the largest row the
// database allows (0020): a request carries up to 512 KiB of search
// results and 5,000-character notes (about 560 kB), a proposal an item's
// fields, 64 KiB of metadata and notes (about 160 kB), an audit event up
// to 64 KiB of metadata. A chunk of the largest rows stays under 32 MiB,
// half of `MAX_ANSWER_BYTES`.
impl OrgRows for Request {
    const TABLE: &'static str = "requests";
    const ROWS_PER_ANSWER: usize = 50;
    type Filter = RequestFilter;

    fn filters(filter: &RequestFilter) -> Vec<(&'static str, String)> {
        let mut columns = status_column(filter.status.map(RequestStatus::as_str));
        columns.extend(filter.created_by.map(|u| ("created_by", u.to_string())));
        columns
    }
}

impl OrgRows for Proposal {
    const TABLE: &'static str = "proposals";
    const ROWS_PER_ANSWER: usize = 200;
    type Filter = Option<ProposalStatus>;

    fn filters(status: &Self::Filter) -> Vec<(&'static str, String)> {
        status_column(status.map(ProposalStatus::as_str))
    }
}

impl OrgRows for AuditEvent {
    const TABLE: &'static str = "audit_events";
    const ROWS_PER_ANSWER: usize = 400;
    type Filter = AuditFilter;

    fn filters(filter: &AuditFilter) -> Vec<(&'static str, String)> {
        let event_type = filter.event_type.clone().map(|t| ("event_type", t));
        let resource_type = filter.resource_type.clone().map(|t| ("resource_type", t));
        let resource_id = filter.resource_id.map(|id| ("resource_id", id.to_string()));
        event_type
            .into_iter()
            .chain(resource_type)
            .chain(resource_id)
            .collect()
    }
}

impl SupabaseClient {
    /// Files a request as the caller, with its audit event.
    pub(crate) async fn create_request(
        &self,
        token: &str,
        search_query: &str,
        search_results: &SearchResults,
        justification: Option<&str>,
        deadline: Deadline,
    ) -> Result<Request, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_search_query": search_query,
            "p_search_results": search_results.as_slice(),
            "p_justification": justification,
        }));
        // Not retried on a lost answer: a retry could file it twice.
        self.rpc(Rpc::Write(token), "create_request", &params, deadline)
            .await
    }

    /// Reviews a request and, with `proposal`, creates its proposal: one
    /// transaction.
    pub(crate) async fn review_request(
        &self,
        token: &str,
        id: Uuid,
        decision: ReviewDecision,
        review_notes: Option<&str>,
        proposal: Option<(ProposalType, &ProposalDraft)>,
        deadline: Deadline,
    ) -> Result<ReviewedRow, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_request_id": id,
            "p_status": decision.as_str(),
            "p_review_notes": review_notes,
            "p_proposal": proposal.map(|(kind, draft)| proposal_columns(kind, draft)),
        }));
        // A retry after a lost answer finds the request reviewed: 409, never twice.
        self.rpc(Rpc::Write(token), "review_request", &params, deadline)
            .await
    }

    /// Creates a proposal (reviewers and admins).
    pub(crate) async fn create_proposal(
        &self,
        token: &str,
        kind: ProposalType,
        draft: &ProposalDraft,
        request_id: Option<Uuid>,
        deadline: Deadline,
    ) -> Result<Proposal, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_proposal": proposal_columns(kind, draft),
            "p_request_id": request_id,
        }));
        self.rpc(Rpc::Write(token), "create_proposal", &params, deadline)
            .await
    }

    /// Files an ADD_ITEM proposal for any member.
    pub(crate) async fn request_new_item(
        &self,
        token: &str,
        draft: &ProposalDraft,
        justification: Option<&str>,
        deadline: Deadline,
    ) -> Result<Proposal, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_proposal": proposal_columns(ProposalType::AddItem, draft),
            "p_justification": justification,
        }));
        self.rpc(Rpc::Write(token), "request_new_item", &params, deadline)
            .await
    }

    /// Approves a proposal of type `kind` in one transaction: the item and
    /// its embedding, the replaced item deprecated, the proposal merged and
    /// the audit events.
    pub(crate) async fn merge_proposal(
        &self,
        kind: ProposalType,
        id: Uuid,
        reviewer: Uuid,
        review_notes: Option<&str>,
        embedding: Option<ItemEmbedding<'_>>,
        deadline: Deadline,
    ) -> Result<MergedRow, SupabaseCallError> {
        let mut params = json!({
            "p_proposal_id": id,
            "p_reviewed_by": reviewer,
            "p_review_notes": review_notes,
        });
        if let Some(embedding) = embedding {
            params["p_embedding"] = json!(vector_literal(embedding.vector));
            params["p_model_version"] = json!(embedding.model_version);
        }
        let params = rpc_params(params);
        // A retry after a lost answer finds the proposal merged: 409, never twice.
        // The service key: the database takes a vector from the service alone,
        // and checks the reviewer's role in the proposal's org again.
        self.rpc(Rpc::ServiceOnce, merge_function(kind), &params, deadline)
            .await
    }

    /// Rejects a pending proposal.
    pub(crate) async fn reject_proposal(
        &self,
        token: &str,
        id: Uuid,
        review_notes: Option<&str>,
        deadline: Deadline,
    ) -> Result<Proposal, SupabaseCallError> {
        let params = rpc_params(json!({ "p_proposal_id": id, "p_review_notes": review_notes }));
        self.rpc(Rpc::Write(token), "reject_proposal", &params, deadline)
            .await
    }

    /// Whether the request or proposal `id` exists in any org; service key,
    /// so users cannot probe other orgs' ids.
    pub(crate) async fn procurement_row_exists(
        &self,
        kind: Record,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<bool, SupabaseCallError> {
        let params = json!({ "p_kind": kind.as_str(), "p_id": id });
        self.rpc(Rpc::Service, "procurement_row_exists", &params, deadline)
            .await
    }
}
