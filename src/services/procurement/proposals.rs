//! Proposals: creating, listing and reading them, approving (embed, then
//! merge in one transaction) and rejecting, and the new-item request any
//! member may file, optionally filled in by Gemini.

use serde_json::json;
use uuid::Uuid;

use super::{NewItemRequest, ProcurementError, ProcurementService, REVIEWERS};
use crate::auth::Caller;
use crate::clients::supabase::ItemEmbedding;
use crate::domain::{
    Metadata, Price, ProductUrl, Proposal, ProposalDraft, ProposalStatus, ProposalType,
};
use crate::resilience::Deadline;
use crate::services::enrichment::{Enrichment, EnrichmentRequest};

impl ProcurementService {
    /// Gemini calls a new-item request makes: one enrichment when asked
    /// (what the caller's rate limit is charged).
    pub fn gemini_calls(&self, request: &NewItemRequest) -> usize {
        usize::from(request.use_ai_enrichment)
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
            .get::<Proposal>(caller, id, deadline)
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
                let parts = (
                    name.as_str(),
                    proposal.item_category.as_deref(),
                    proposal.item_description.as_deref(),
                );
                let mut vectors = self
                    .embeddings
                    .embed_items([parts], caller.org_id, deadline)
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
            .unless_other_orgs::<Proposal, _>(
                caller,
                row,
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
