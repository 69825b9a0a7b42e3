//! The re-embed lease and its progress (`catalog_embedding_backfill_*`,
//! migration 0019), service key only. The database holds the lease so that
//! replicas agree on who re-embeds; these calls only carry it.

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{Rpc, SupabaseCallError, SupabaseClient};
use crate::resilience::Deadline;

/// The answer to a lease claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillClaim {
    /// The caller holds the lease now.
    Claimed,
    /// Another replica's lease is live.
    Held,
    /// This model's re-embed is done.
    Finished,
}

/// Where a model's re-embed stands, as readiness reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// No replica has started it.
    NotStarted,
    /// A replica holds a live lease.
    Running,
    /// Started, with no live lease: the next replica to start resumes it.
    Paused,
    /// Every item was re-embedded.
    Finished,
}

/// Counts of a re-embed: items to do when it started, done and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct BackfillProgress {
    /// Items that needed an embedding when the run started.
    pub items_total: u64,
    /// Items re-embedded so far.
    pub items_done: u64,
    /// Items that could not be embedded in this run.
    pub items_failed: u64,
}

/// A model's re-embed: its state and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BackfillStatus {
    /// Its state.
    pub state: BackfillState,
    /// Its counts (zero before it starts).
    #[serde(flatten)]
    pub progress: BackfillProgress,
}

#[derive(Deserialize)]
struct StatusRow {
    state: BackfillState,
    items_total: Option<u64>,
    items_done: Option<u64>,
    items_failed: Option<u64>,
}

#[derive(Deserialize)]
struct OrgBacklog {
    org_id: Uuid,
    items: u64,
}

impl SupabaseClient {
    /// Takes (or renews) the re-embed lease of `model_version` for `holder`.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn claim_backfill(
        &self,
        model_version: &str,
        holder: &str,
        lease_seconds: u32,
        deadline: Deadline,
    ) -> Result<BackfillClaim, SupabaseCallError> {
        let params = json!({
            "p_model_version": model_version,
            "p_holder": holder,
            "p_lease_seconds": lease_seconds,
        });
        self.rpc(
            Rpc::Service,
            "catalog_embedding_backfill_claim",
            &params,
            deadline,
        )
        .await
    }

    /// Records `progress` and renews the lease for `lease_seconds` (0 gives
    /// it up); `finished` ends the re-embed. False when `holder` no longer
    /// holds the lease.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn report_backfill(
        &self,
        model_version: &str,
        holder: &str,
        lease_seconds: u32,
        progress: BackfillProgress,
        finished: bool,
        deadline: Deadline,
    ) -> Result<bool, SupabaseCallError> {
        let params = json!({
            "p_model_version": model_version,
            "p_holder": holder,
            "p_lease_seconds": lease_seconds,
            "p_items_total": progress.items_total,
            "p_items_done": progress.items_done,
            "p_items_failed": progress.items_failed,
            "p_finished": finished,
        });
        self.rpc(
            Rpc::Service,
            "catalog_embedding_backfill_report",
            &params,
            deadline,
        )
        .await
    }

    /// Where the re-embed of `model_version` stands. One attempt outside the
    /// breaker, like [`Self::ping`]: readiness reports it.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails or the deadline passes.
    pub async fn backfill_status(
        &self,
        model_version: &str,
        deadline: Deadline,
    ) -> Result<BackfillStatus, SupabaseCallError> {
        let params = json!({ "p_model_version": model_version });
        let rows: Vec<StatusRow> = self
            .policy
            .probe(
                deadline,
                self.execute(self.service_rpc("catalog_embedding_backfill_status", &params)),
            )
            .await?;
        Ok(rows.first().map_or(
            BackfillStatus {
                state: BackfillState::NotStarted,
                progress: BackfillProgress::default(),
            },
            |row| BackfillStatus {
                state: row.state,
                progress: BackfillProgress {
                    items_total: row.items_total.unwrap_or(0),
                    items_done: row.items_done.unwrap_or(0),
                    items_failed: row.items_failed.unwrap_or(0),
                },
            },
        ))
    }

    /// The orgs with active items lacking an embedding by `model_version`,
    /// with how many each, by org id.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn orgs_needing_embedding(
        &self,
        model_version: &str,
        deadline: Deadline,
    ) -> Result<Vec<(Uuid, u64)>, SupabaseCallError> {
        let params = json!({ "p_model_version": model_version });
        let rows: Vec<OrgBacklog> = self
            .rpc(
                Rpc::Service,
                "catalog_orgs_needing_embedding",
                &params,
                deadline,
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.org_id, r.items)).collect())
    }
}
