//! The procurement workflow: requests for what the catalog lacks, proposals
//! to add, replace or deprecate items, their review and merge, and the
//! audit log. Each write is one database transaction that also records its
//! audit events; approving embeds the item's text first, so a Gemini failure
//! writes nothing and the proposal stays pending.
//!
//! One `impl ProcurementService` per resource: `requests` (requests and
//! their review), `proposals` (proposals, their approval and the
//! new-item request); the audit log and what both share are here.

mod proposals;
mod requests;

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::{Caller, NotAllowed};
use crate::clients::gemini::GeminiCallError;
use crate::clients::supabase::{
    Breach, OrgRows, Refusal, SupabaseCallError, SupabaseClient, SupabaseError,
};
use crate::domain::{
    AuditEvent, AuditFilter, Page, PageRequest, ProposalDraft, Role, WorkflowRecord,
};
use crate::resilience::{CallError, Deadline};
use crate::services::embeddings::{EmbeddingError, EmbeddingService};
use crate::services::enrichment::{EnrichmentError, EnrichmentService};
use crate::services::fan_out::TaskFailed;
use crate::services::membership::MembershipDirectory;

/// Who may review requests and proposals.
const REVIEWERS: &[Role] = &[Role::Reviewer, Role::Admin];

/// Why a workflow operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcurementError {
    /// Gemini could not embed or enrich.
    #[error(transparent)]
    Gemini(#[from] GeminiCallError),
    /// Gemini answered twice with unusable product data.
    #[error("unusable enrichment: {0}")]
    UnusableEnrichment(String),
    /// The database call failed or was refused.
    #[error(transparent)]
    Database(#[from] SupabaseCallError),
    /// The caller's role does not allow this.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// A background task failed (a bug).
    #[error(transparent)]
    TaskFailed(#[from] TaskFailed),
    /// No such row (the original's `Request not found: <id>`).
    #[error("{0}")]
    NotFound(String),
    /// The row belongs to another organisation (`Access denied to request`).
    #[error("{0}")]
    OtherOrg(String),
    /// The row is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The database answered with something that cannot be right.
    #[error("unexpected database answer: {0}")]
    Inconsistent(&'static str),
}

impl From<EmbeddingError> for ProcurementError {
    fn from(error: EmbeddingError) -> Self {
        match error {
            EmbeddingError::Gemini(e) => Self::Gemini(e),
            EmbeddingError::TaskFailed(e) => Self::TaskFailed(e),
        }
    }
}

impl From<EnrichmentError> for ProcurementError {
    fn from(error: EnrichmentError) -> Self {
        match error {
            EnrichmentError::Gemini(e) => Self::Gemini(e),
            EnrichmentError::Unusable(detail) => Self::UnusableEnrichment(detail),
            EnrichmentError::TaskFailed(e) => Self::TaskFailed(e),
        }
    }
}

/// A new item asked for by any member.
#[derive(Debug, Clone)]
pub struct NewItemRequest {
    /// The item as given; with enrichment, what is absent is filled in.
    pub draft: ProposalDraft,
    /// Why it is needed (kept with the proposal).
    pub justification: Option<String>,
    /// Ask Gemini to fill in what was not given.
    pub use_ai_enrichment: bool,
}

/// Workflow use cases.
#[derive(Debug)]
pub struct ProcurementService {
    supabase: SupabaseClient,
    memberships: Arc<MembershipDirectory>,
    embeddings: Arc<EmbeddingService>,
    enrichment: Arc<EnrichmentService>,
}

impl ProcurementService {
    /// A service over `supabase`, embedding merged items with `embeddings`
    /// and filling requested items with `enrichment`; a write the database
    /// refuses drops the caller's cached role from `memberships`.
    pub fn new(
        supabase: SupabaseClient,
        memberships: Arc<MembershipDirectory>,
        embeddings: Arc<EmbeddingService>,
        enrichment: Arc<EnrichmentService>,
    ) -> Self {
        Self {
            supabase,
            memberships,
            embeddings,
            enrichment,
        }
    }

    /// A page of the caller's org's requests or proposals.
    ///
    /// # Errors
    /// The database's error.
    pub async fn list<T: WorkflowRecord + OrgRows>(
        &self,
        caller: &Caller,
        filter: &T::Filter,
        page: PageRequest,
        deadline: Deadline,
    ) -> Result<Page<T>, ProcurementError> {
        let token = &caller.access_token;
        Ok(self
            .supabase
            .list_page(token, caller.org_id, filter, page, deadline)
            .await?)
    }

    /// One request or proposal of the caller's org: 403 for another org's,
    /// whether row-level security showed it or hid it; 404 for an id no org
    /// has.
    ///
    /// # Errors
    /// Not found, another org's, or the database's error.
    pub async fn get<T: WorkflowRecord + OrgRows>(
        &self,
        caller: &Caller,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<T, ProcurementError> {
        let kind = T::RECORD;
        let denied = || ProcurementError::OtherOrg(format!("Access denied to {}", kind.as_str()));
        let row: Option<T> = self
            .supabase
            .row_by_id(&caller.access_token, id, deadline)
            .await?;
        match row {
            Some(row) if row.org_id() == caller.org_id => Ok(row),
            Some(_) => Err(denied()),
            None if self
                .supabase
                .procurement_row_exists(kind, id, deadline)
                .await? =>
            {
                Err(denied())
            }
            None => Err(ProcurementError::NotFound(format!(
                "{} not found: {id}",
                kind.title()
            ))),
        }
    }

    /// A page of the caller's org's audit events (admins).
    ///
    /// # Errors
    /// Not an admin, or the database's error.
    pub async fn audit_log(
        &self,
        caller: &Caller,
        filter: &AuditFilter,
        page: PageRequest,
        deadline: Deadline,
    ) -> Result<Page<AuditEvent>, ProcurementError> {
        caller.require(Role::Admin)?;
        Ok(self
            .supabase
            .list_page(&caller.access_token, caller.org_id, filter, page, deadline)
            .await?)
    }

    /// A workflow function's outcome, except that its "not found" for a row
    /// another org has is `other_org` (the original's 403). Through
    /// PostgREST the two answer alike, so nobody probes ids there; the
    /// server tells them apart with the service key. A "not found" about
    /// something else (a proposal's item) stays as it is.
    async fn unless_other_orgs<R: WorkflowRecord + OrgRows, T>(
        &self,
        caller: &Caller,
        outcome: Result<T, SupabaseCallError>,
        id: Uuid,
        other_org: &str,
        deadline: Deadline,
    ) -> Result<T, ProcurementError> {
        let Err(CallError::Upstream(SupabaseError::Refused {
            reason: Refusal::Rule(Breach::NotFound),
            ..
        })) = &outcome
        else {
            return Ok(outcome?);
        };
        let ours: Option<R> = self
            .supabase
            .row_by_id(&caller.access_token, id, deadline)
            .await?;
        if ours.is_none()
            && self
                .supabase
                .procurement_row_exists(R::RECORD, id, deadline)
                .await?
        {
            return Err(ProcurementError::OtherOrg(other_org.to_owned()));
        }
        Ok(outcome?)
    }
}
