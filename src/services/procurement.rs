//! The procurement workflow: requests for what the catalog lacks, proposals
//! to add, replace or deprecate items, their review and merge, and the
//! audit log. Each write is one database transaction that also records its
//! audit events; approving embeds the item's text first, so a Gemini failure
//! writes nothing and the proposal stays pending.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use crate::auth::{Caller, NotAllowed};
use crate::clients::gemini::GeminiCallError;
use crate::clients::supabase::{
    Breach, ItemEmbedding, PageRows, Refusal, SupabaseCallError, SupabaseClient, SupabaseError,
};
use crate::domain::{
    AuditEvent, AuditFilter, Metadata, PageCursor, Price, ProductUrl, Proposal, ProposalDraft,
    ProposalStatus, ProposalType, Request, RequestFilter, ReviewDecision, Role, SearchResults,
    TaskType,
};
use crate::resilience::{CallError, Deadline};
use crate::services::embeddings::{EmbeddingError, EmbeddingService, catalog_item_text};
use crate::services::enrichment::{
    Enrichment, EnrichmentError, EnrichmentRequest, EnrichmentService,
};
use crate::services::fan_out::TaskFailed;
use crate::services::membership::MembershipDirectory;
use crate::services::page::{Page, paged, rows_to_ask};

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

    /// Gemini calls a new-item request makes: one enrichment when asked
    /// (what the caller's rate limit is charged).
    pub fn gemini_calls(&self, request: &NewItemRequest) -> usize {
        usize::from(request.use_ai_enrichment)
    }

    /// Files a request as the caller (any member).
    ///
    /// # Errors
    /// The database's error.
    pub async fn create_request(
        &self,
        caller: &Caller,
        search_query: &str,
        search_results: &SearchResults,
        justification: Option<&str>,
        deadline: Deadline,
    ) -> Result<Request, ProcurementError> {
        let row = self
            .supabase
            .create_request(
                &caller.access_token,
                search_query,
                search_results,
                justification,
                deadline,
            )
            .await;
        let row = self.memberships.heed_refusal(caller.user_id, row).await?;
        Ok(row)
    }

    /// A page of the caller's org's requests.
    ///
    /// # Errors
    /// The database's error.
    pub async fn list_requests(
        &self,
        caller: &Caller,
        filter: RequestFilter,
        limit: usize,
        cursor: Option<PageCursor>,
        deadline: Deadline,
    ) -> Result<Page<Request>, ProcurementError> {
        let rows = self
            .supabase
            .list_requests(
                &caller.access_token,
                caller.org_id,
                &filter,
                rows_to_ask(limit),
                cursor.as_ref(),
                deadline,
            )
            .await?;
        page_of(rows, limit, |row| (row.created_at.as_str(), row.id))
    }

    /// One request of the caller's org.
    ///
    /// # Errors
    /// Not found, another org's, or the database's error.
    pub async fn get_request(
        &self,
        caller: &Caller,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<Request, ProcurementError> {
        let row = self
            .supabase
            .get_request(&caller.access_token, id, deadline)
            .await?;
        let org = row.as_ref().map(|r| r.org_id);
        self.owned(caller, "request", id, row, org, deadline).await
    }

    /// Approves or rejects a pending request; approving with `proposal`
    /// creates it in the same transaction.
    ///
    /// # Errors
    /// Not a reviewer, not found, another org's, not pending, or the database's error.
    pub async fn review_request(
        &self,
        caller: &Caller,
        id: Uuid,
        decision: ReviewDecision,
        review_notes: Option<&str>,
        proposal: Option<(ProposalType, &ProposalDraft)>,
        deadline: Deadline,
    ) -> Result<(Request, Option<Proposal>), ProcurementError> {
        caller.require_any(REVIEWERS)?;
        let proposal = proposal.filter(|_| decision == ReviewDecision::Approved);
        let reviewed = self
            .supabase
            .review_request(
                &caller.access_token,
                id,
                decision,
                review_notes,
                proposal,
                deadline,
            )
            .await;
        let reviewed = self
            .memberships
            .heed_refusal(caller.user_id, reviewed)
            .await;
        let reviewed = self
            .unless_other_orgs(
                caller,
                reviewed,
                "request",
                id,
                "Cannot review request from different organization",
                deadline,
            )
            .await?;
        Ok((reviewed.request, reviewed.proposal))
    }

    /// Creates a pending proposal (reviewers and admins).
    ///
    /// # Errors
    /// Not a reviewer, a rule the database checks, or the database's error.
    pub async fn create_proposal(
        &self,
        caller: &Caller,
        kind: ProposalType,
        draft: &ProposalDraft,
        request_id: Option<Uuid>,
        deadline: Deadline,
    ) -> Result<Proposal, ProcurementError> {
        caller.require_any(REVIEWERS)?;
        let row = self
            .supabase
            .create_proposal(&caller.access_token, kind, draft, request_id, deadline)
            .await;
        let row = self.memberships.heed_refusal(caller.user_id, row).await?;
        Ok(row)
    }

    /// A page of the caller's org's proposals.
    ///
    /// # Errors
    /// The database's error.
    pub async fn list_proposals(
        &self,
        caller: &Caller,
        status: Option<ProposalStatus>,
        limit: usize,
        cursor: Option<PageCursor>,
        deadline: Deadline,
    ) -> Result<Page<Proposal>, ProcurementError> {
        let rows = self
            .supabase
            .list_proposals(
                &caller.access_token,
                caller.org_id,
                status,
                rows_to_ask(limit),
                cursor.as_ref(),
                deadline,
            )
            .await?;
        page_of(rows, limit, |row| (row.created_at.as_str(), row.id))
    }

    /// One proposal of the caller's org.
    ///
    /// # Errors
    /// Not found, another org's, or the database's error.
    pub async fn get_proposal(
        &self,
        caller: &Caller,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<Proposal, ProcurementError> {
        let row = self
            .supabase
            .get_proposal(&caller.access_token, id, deadline)
            .await?;
        let org = row.as_ref().map(|r| r.org_id);
        self.owned(caller, "proposal", id, row, org, deadline).await
    }

    /// Approves a pending proposal: embeds the item's text (adding and
    /// replacing), then merges in one transaction. If embedding fails
    /// nothing is written and the proposal stays pending.
    ///
    /// # Errors
    /// Not a reviewer, not found, another org's, not pending (also for the
    /// losers of concurrent approvals), Gemini's or the database's error.
    pub async fn approve_proposal(
        &self,
        caller: &Caller,
        id: Uuid,
        review_notes: Option<&str>,
        deadline: Deadline,
    ) -> Result<Proposal, ProcurementError> {
        caller.require_any(REVIEWERS)?;
        let proposal = self
            .get_proposal(caller, id, deadline)
            .await
            .map_err(|e| match e {
                ProcurementError::OtherOrg(_) => ProcurementError::OtherOrg(
                    "Cannot approve proposal from different organization".to_owned(),
                ),
                other => other,
            })?;
        // Checked again, under lock, by the merge; this saves a Gemini call.
        if proposal.status != ProposalStatus::Pending {
            return Err(ProcurementError::Conflict(
                "Only pending proposals can be approved".to_owned(),
            ));
        }
        let model_version = self.embeddings.model_version();
        let vector = match (proposal.proposal_type, &proposal.item_name) {
            (ProposalType::DeprecateItem, _) | (_, None) => None,
            (_, Some(name)) => {
                let text = catalog_item_text(
                    name,
                    proposal.item_category.as_deref(),
                    proposal.item_description.as_deref(),
                );
                let mut vectors = self
                    .embeddings
                    .embed(
                        vec![text],
                        TaskType::RetrievalDocument,
                        caller.org_id,
                        deadline,
                    )
                    .await?;
                vectors.pop()
            }
        };
        let embedding = vector.as_deref().map(|vector| ItemEmbedding {
            vector,
            model_version: &model_version,
        });
        let merged = self
            .supabase
            .merge_proposal(
                proposal.proposal_type,
                id,
                caller.user_id,
                review_notes,
                embedding,
                deadline,
            )
            .await;
        let merged = self
            .memberships
            .heed_refusal(caller.user_id, merged)
            .await?;
        Ok(merged.proposal)
    }

    /// Rejects a pending proposal.
    ///
    /// # Errors
    /// Not a reviewer, not found, another org's, not pending, or the database's error.
    pub async fn reject_proposal(
        &self,
        caller: &Caller,
        id: Uuid,
        review_notes: Option<&str>,
        deadline: Deadline,
    ) -> Result<Proposal, ProcurementError> {
        caller.require_any(REVIEWERS)?;
        let row = self
            .supabase
            .reject_proposal(&caller.access_token, id, review_notes, deadline)
            .await;
        let row = self.memberships.heed_refusal(caller.user_id, row).await;
        let row = self
            .unless_other_orgs(
                caller,
                row,
                "proposal",
                id,
                "Cannot reject proposal from different organization",
                deadline,
            )
            .await?;
        Ok(row)
    }

    /// An ADD_ITEM proposal asked for by any member, filled in by Gemini
    /// when asked: what the member gave wins, metadata is merged and marked.
    ///
    /// # Errors
    /// Gemini's (when asked) or the database's error.
    pub async fn request_new_item(
        &self,
        caller: &Caller,
        name: &str,
        request: NewItemRequest,
        deadline: Deadline,
    ) -> Result<(Proposal, Option<Enrichment>), ProcurementError> {
        let mut draft = request.draft;
        draft.item_name = Some(name.to_owned());
        let enrichment = if request.use_ai_enrichment {
            let enrichment = self
                .enrichment
                .enrich(
                    &EnrichmentRequest {
                        product_name: name.to_owned(),
                        category: draft.item_category.clone(),
                        additional_context: request.justification.clone(),
                    },
                    caller.org_id,
                    deadline,
                )
                .await?;
            Some(enrichment)
        } else {
            None
        };
        if let Some(enrichment) = &enrichment {
            fill_from_enrichment(&mut draft, enrichment);
        }
        let row = self
            .supabase
            .request_new_item(
                &caller.access_token,
                &draft,
                request.justification.as_deref(),
                deadline,
            )
            .await;
        let row = self.memberships.heed_refusal(caller.user_id, row).await?;
        Ok((row, enrichment))
    }

    /// A page of the caller's org's audit events (admins).
    ///
    /// # Errors
    /// Not an admin, or the database's error.
    pub async fn audit_log(
        &self,
        caller: &Caller,
        filter: &AuditFilter<'_>,
        limit: usize,
        cursor: Option<PageCursor>,
        deadline: Deadline,
    ) -> Result<Page<AuditEvent>, ProcurementError> {
        caller.require(Role::Admin)?;
        let rows = self
            .supabase
            .list_audit_events(
                &caller.access_token,
                caller.org_id,
                filter,
                rows_to_ask(limit),
                cursor.as_ref(),
                deadline,
            )
            .await?;
        page_of(rows, limit, |row| (row.created_at.as_str(), row.id))
    }

    /// A workflow function's outcome, except that its "not found" for a row
    /// another org has is `other_org` (the original's 403). Through
    /// PostgREST the two answer alike, so nobody probes ids there; the
    /// server tells them apart with the service key. A "not found" about
    /// something else (a proposal's item) stays as it is.
    async fn unless_other_orgs<T>(
        &self,
        caller: &Caller,
        outcome: Result<T, SupabaseCallError>,
        kind: &'static str,
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
        let token = &caller.access_token;
        let ours = match kind {
            "request" => self
                .supabase
                .get_request(token, id, deadline)
                .await?
                .is_some(),
            _ => self
                .supabase
                .get_proposal(token, id, deadline)
                .await?
                .is_some(),
        };
        if !ours
            && self
                .supabase
                .procurement_row_exists(kind, id, deadline)
                .await?
        {
            return Err(ProcurementError::OtherOrg(other_org.to_owned()));
        }
        Ok(outcome?)
    }

    /// `row` (of org `org`) if it is the caller's org's; 403 for another
    /// org's, whether row-level security showed it or hid it; 404 for an id
    /// no org has.
    async fn owned<T>(
        &self,
        caller: &Caller,
        kind: &'static str,
        id: Uuid,
        row: Option<T>,
        org: Option<Uuid>,
        deadline: Deadline,
    ) -> Result<T, ProcurementError> {
        let denied = || ProcurementError::OtherOrg(format!("Access denied to {kind}"));
        match row {
            Some(row) if org == Some(caller.org_id) => Ok(row),
            Some(_) => Err(denied()),
            None if self
                .supabase
                .procurement_row_exists(kind, id, deadline)
                .await? =>
            {
                Err(denied())
            }
            None => {
                let name = if kind == "request" {
                    "Request"
                } else {
                    "Proposal"
                };
                Err(ProcurementError::NotFound(format!(
                    "{name} not found: {id}"
                )))
            }
        }
    }
}

/// Rows as a page; a row whose `created_at` is not a time is the
/// database answering something that cannot be right.
fn page_of<T>(
    rows: PageRows<T>,
    limit: usize,
    key: impl Fn(&T) -> (&str, Uuid),
) -> Result<Page<T>, ProcurementError> {
    paged(rows.rows, limit, rows.cut_short, key).ok_or(ProcurementError::Inconsistent(
        "created_at is not a timestamp",
    ))
}

/// What Gemini found, where the member gave nothing; metadata merged (the
/// member's keys win) and marked as enriched. A value Gemini gave that no
/// member could have given (a price past the limit, say) is left out.
fn fill_from_enrichment(draft: &mut ProposalDraft, enrichment: &Enrichment) {
    let texts = [
        (&mut draft.item_description, &enrichment.description),
        (&mut draft.item_category, &enrichment.category),
        (&mut draft.item_vendor, &enrichment.vendor),
    ];
    for (field, found) in texts {
        field.get_or_insert_with(|| found.clone());
    }
    if draft.item_sku.is_none() {
        draft.item_sku.clone_from(&enrichment.sku);
    }
    if draft.item_price.is_none() {
        draft.item_price = enrichment.price.and_then(Price::new);
    }
    if draft.item_pricing_type.is_none() {
        draft.item_pricing_type = enrichment.pricing_type;
    }
    if draft.item_product_url.is_none() {
        draft.item_product_url = enrichment.product_url.as_deref().and_then(ProductUrl::new);
    }
    let mut metadata = enrichment.metadata.clone();
    let given = draft.item_metadata.take().unwrap_or_default();
    metadata.extend(given.as_map().clone());
    metadata.insert("ai_enriched".into(), json!(true));
    metadata.insert("ai_confidence".into(), json!(enrichment.confidence));
    // Past the limits a member is held to, the member's own metadata alone.
    draft.item_metadata = Some(Metadata::new(metadata).unwrap_or(given));
}
