//! Requests for what the catalog lacks: filing, listing, reading and
//! reviewing them (a review may create the proposal in the same
//! transaction).

use uuid::Uuid;

use super::{ProcurementError, ProcurementService, REVIEWERS};
use crate::auth::Caller;
use crate::domain::{
    Proposal, ProposalDraft, ProposalType, Request, ReviewDecision, SearchResults,
};
use crate::resilience::Deadline;

impl ProcurementService {
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
            .unless_other_orgs::<Request, _>(
                caller,
                reviewed,
                id,
                "Cannot review request from different organization",
                deadline,
            )
            .await?;
        Ok((reviewed.request, reviewed.proposal))
    }
}
