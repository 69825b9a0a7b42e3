//! The re-embed of every org, in the background: after `EMBEDDING_MODEL`
//! changes, or after taking over the original's database (its vectors are
//! `models/text-embedding-004`, which Google has shut down, so no query can be
//! compared with them), each org's items are embedded again with the
//! configured model, org by org, through the same chunked repair an admin
//! runs ([`CatalogService::repair_org`]: 100 texts per `batchEmbedContents`
//! call, one bulk write per chunk).
//!
//! The database decides who runs it: a lease row per model (migration 0019),
//! taken at start, renewed while the work goes on, given up on shutdown. A
//! replica that finds the lease held waits and takes over when it runs out,
//! so a re-embed never runs twice at once and one that stopped resumes: what
//! is left is whatever still lacks a vector of the model. Once every item is
//! done the row says `finished` and later starts do nothing. Progress goes
//! to the logs and, through the row, to every replica's readiness.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::clients::supabase::{BackfillClaim, BackfillProgress, SupabaseClient};
use crate::resilience::Deadline;
use crate::services::catalog::{CatalogError, CatalogService};
use crate::services::lease::{LEASE, LEASE_CALL_BUDGET as CALL_BUDGET, lease_seconds};

/// How often the holder renews its lease (and records its progress).
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// How long a replica waits before asking again for a lease held elsewhere
/// (or after the database could not be asked).
const RETRY_CLAIM_EVERY: Duration = Duration::from_secs(30);
/// Time for one org's repair call; a larger org takes several.
const ORG_BUDGET: Duration = Duration::from_secs(300);
/// How long to wait for an admin's repair of the same org, here, to end.
const REPAIR_RUNNING_WAIT: Duration = Duration::from_secs(1);

/// The background re-embed of every org's items with the configured model.
#[derive(Debug)]
pub struct EmbeddingBackfill {
    supabase: SupabaseClient,
    catalog: Arc<CatalogService>,
    model: String,
    /// This process, as the lease names it.
    holder: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillOutcome {
    /// Every item has a vector of the model (now or before this run).
    Finished,
    /// Some items could not be embedded; the next start tries them again.
    Incomplete,
    /// Another replica took the lease over (ours had run out).
    LeaseLost,
    /// The server is shutting down; the lease was given up.
    Stopped,
}

impl EmbeddingBackfill {
    /// A re-embed with `model` of every org's items, as `catalog` repairs them.
    pub fn new(supabase: SupabaseClient, catalog: Arc<CatalogService>, model: String) -> Self {
        Self {
            supabase,
            catalog,
            model,
            holder: format!("catalogai-{}", Uuid::new_v4()),
        }
    }

    /// Runs until the re-embed is finished, cannot go on, or `stop` completes
    /// (then the lease is given up, so another replica resumes at once).
    pub async fn run(self, stop: impl Future<Output = ()>) -> BackfillOutcome {
        let progress = Mutex::new(BackfillProgress::default());
        let outcome = tokio::select! {
            outcome = self.claim_and_work(&progress) => outcome,
            () = stop => BackfillOutcome::Stopped,
        };
        let current = *progress.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            BackfillOutcome::Finished | BackfillOutcome::LeaseLost => {}
            BackfillOutcome::Incomplete | BackfillOutcome::Stopped => {
                // Best effort: unreleased, the lease runs out on its own.
                if let Err(e) = self
                    .supabase
                    .report_backfill(
                        &self.model,
                        &self.holder,
                        0,
                        current,
                        false,
                        Deadline::after(CALL_BUDGET),
                    )
                    .await
                {
                    tracing::warn!(error = %e, "re-embed: could not give up the lease; it runs out in {}s", LEASE.as_secs());
                }
            }
        }
        outcome
    }

    async fn claim_and_work(&self, progress: &Mutex<BackfillProgress>) -> BackfillOutcome {
        let mut told_waiting = false;
        loop {
            match self
                .supabase
                .claim_backfill(
                    &self.model,
                    &self.holder,
                    lease_seconds(),
                    Deadline::after(CALL_BUDGET),
                )
                .await
            {
                Ok(BackfillClaim::Finished) => {
                    tracing::debug!(model = %self.model, "re-embed: already finished");
                    return BackfillOutcome::Finished;
                }
                Ok(BackfillClaim::Claimed) => break,
                Ok(BackfillClaim::Held) => {
                    if !told_waiting {
                        tracing::info!(model = %self.model, "re-embed: another replica is running it; waiting to take over if it stops");
                        told_waiting = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "re-embed: cannot ask the database for the lease; trying again in {}s", RETRY_CLAIM_EVERY.as_secs());
                }
            }
            tokio::time::sleep(RETRY_CLAIM_EVERY).await;
        }
        tokio::select! {
            outcome = self.work(progress) => outcome,
            () = self.keep_lease(progress) => {
                tracing::warn!(model = %self.model, "re-embed: lost the lease to another replica; stopping here");
                BackfillOutcome::LeaseLost
            }
        }
    }

    /// Renews the lease until it is lost (then returns).
    async fn keep_lease(&self, progress: &Mutex<BackfillProgress>) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let current = *progress.lock().unwrap_or_else(PoisonError::into_inner);
            match self
                .supabase
                .report_backfill(
                    &self.model,
                    &self.holder,
                    lease_seconds(),
                    current,
                    false,
                    Deadline::after(CALL_BUDGET),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                // The lease has LEASE to run; the next renewal may get through.
                Err(e) => tracing::warn!(error = %e, "re-embed: could not renew the lease"),
            }
        }
    }

    async fn work(&self, progress: &Mutex<BackfillProgress>) -> BackfillOutcome {
        let started = Instant::now();
        let backlog = match self
            .supabase
            .orgs_needing_embedding(&self.model, Deadline::after(CALL_BUDGET))
            .await
        {
            Ok(backlog) => backlog,
            Err(e) => {
                tracing::warn!(error = %e, "re-embed: cannot list what needs embedding; the next start tries again");
                return BackfillOutcome::Incomplete;
            }
        };
        let total: u64 = backlog.iter().map(|(_, items)| items).sum();
        update(progress, |p| p.items_total = total);
        tracing::info!(
            model = %self.model,
            orgs = backlog.len(),
            items = total,
            "re-embed: embedding every org's items that lack a vector of this model"
        );
        for (org, items) in backlog {
            let failed = self.reembed_org(org, items, progress).await;
            let now = *progress.lock().unwrap_or_else(PoisonError::into_inner);
            tracing::info!(
                org_id = %org,
                org_items = items,
                org_failed = failed,
                items_done = now.items_done,
                items_total = now.items_total,
                "re-embed progress"
            );
        }
        let done = *progress.lock().unwrap_or_else(PoisonError::into_inner);
        if done.items_failed > 0 {
            tracing::warn!(
                model = %self.model,
                items_done = done.items_done,
                items_failed = done.items_failed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "re-embed: some items could not be embedded; the next start (or an admin's POST /api/admin/embeddings/check) tries them again"
            );
            return BackfillOutcome::Incomplete;
        }
        match self
            .supabase
            .report_backfill(
                &self.model,
                &self.holder,
                0,
                done,
                true,
                Deadline::after(CALL_BUDGET),
            )
            .await
        {
            Ok(true) => {
                tracing::info!(
                    model = %self.model,
                    items_done = done.items_done,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "re-embed finished"
                );
                BackfillOutcome::Finished
            }
            Ok(false) => BackfillOutcome::LeaseLost,
            Err(e) => {
                tracing::warn!(error = %e, "re-embed: done, but could not record it; the next start checks again");
                BackfillOutcome::Incomplete
            }
        }
    }

    /// Repairs one org until it has nothing left or stops making progress;
    /// returns how many of its items failed.
    async fn reembed_org(&self, org: Uuid, items: u64, progress: &Mutex<BackfillProgress>) -> u64 {
        let mut repaired = 0;
        loop {
            match self
                .catalog
                .repair_org(org, Deadline::after(ORG_BUDGET))
                .await
            {
                Ok(report) => {
                    repaired += report.repaired;
                    update(progress, |p| p.items_done += report.repaired);
                    if report.complete || report.repaired == 0 {
                        update(progress, |p| p.items_failed += report.failed);
                        return report.failed;
                    }
                }
                // An admin is repairing this org here: wait for it to end,
                // then find what it left.
                Err(CatalogError::RepairRunning(_)) => {
                    tokio::time::sleep(REPAIR_RUNNING_WAIT).await;
                }
                Err(e) => {
                    let failed = items.saturating_sub(repaired);
                    tracing::warn!(org_id = %org, error = %e, items = failed, "re-embed: this org's items could not be listed");
                    update(progress, |p| p.items_failed += failed);
                    return failed;
                }
            }
        }
    }
}

fn update(progress: &Mutex<BackfillProgress>, change: impl FnOnce(&mut BackfillProgress)) {
    change(&mut progress.lock().unwrap_or_else(PoisonError::into_inner));
}
