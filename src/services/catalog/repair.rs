//! Embedding repair: embeds an org's active items that lack a vector of the
//! configured model, in `batchEmbedContents` chunks of 100 written with one
//! bulk request each, one repair per org at a time; the admin's repair and
//! the background re-embed (`services::backfill`) both run it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use uuid::Uuid;

use super::{CatalogError, CatalogService};
use crate::auth::{Caller, NotAllowed};
use crate::clients::gemini::MAX_EMBED_BATCH;
use crate::clients::supabase::{ItemText, SupabaseClient};
use crate::domain::Role;
use crate::resilience::{CallError, Deadline};
use crate::services::embeddings::EmbeddingService;
use crate::services::fan_out::FanOut;

/// Items read per page while repairing (the SQL function's own cap).
const REPAIR_PAGE: usize = 1_000;
/// Chunks of one repair embedded and written at once. Small: repair is
/// background work and must leave Gemini capacity to interactive requests.
const REPAIR_CHUNK_CONCURRENCY: usize = 4;

/// What embedding repair found and did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// The org's active items.
    pub total_items: u64,
    /// Of those, items with an embedding by the current model, before repair.
    pub items_with_embeddings: u64,
    /// Items missing an embedding or with one by another model, before repair.
    pub items_without_embeddings: u64,
    /// Items embedded and written now.
    pub repaired: u64,
    /// Items that could not be embedded or written.
    pub failed: u64,
    /// Their ids.
    pub failed_items: Vec<Uuid>,
    /// False when the request's deadline stopped the repair before every
    /// item was tried: what was written stays written; run it again for
    /// the rest.
    pub complete: bool,
}

/// How far a running repair has got, for a second caller told to wait.
#[derive(Debug, Clone, Copy, Default)]
pub struct RepairProgress {
    /// Items the running repair set out to embed.
    pub items_to_repair: u64,
    /// Embedded and written so far.
    pub repaired: u64,
    /// Failed so far.
    pub failed: u64,
}

/// Holds an org's repair slot; frees it when dropped, however the repair ends
/// (finished, failed, or its client went away).
struct RepairSlot<'a> {
    repairs: &'a Mutex<HashMap<Uuid, RepairProgress>>,
    org: Uuid,
}

impl RepairSlot<'_> {
    fn report(&self, report: &RepairReport) {
        let mut repairs = self.repairs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(progress) = repairs.get_mut(&self.org) {
            *progress = RepairProgress {
                items_to_repair: report.items_without_embeddings,
                repaired: report.repaired,
                failed: report.failed,
            };
        }
    }
}

impl Drop for RepairSlot<'_> {
    fn drop(&mut self) {
        self.repairs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.org);
    }
}

/// Repair stops starting Gemini calls when less than this is left of the
/// request's deadline, so it can still answer with what it did.
const REPAIR_STOP_MARGIN: Duration = Duration::from_millis(1000);
/// Time kept back from each chunk's Gemini call for writing its embeddings.
/// A write cut by the deadline may still commit after we stopped listening,
/// and the report would then call saved items failed; cutting the Gemini
/// call instead leaves nothing in doubt.
const REPAIR_WRITE_RESERVE: Duration = Duration::from_millis(500);

impl CatalogService {
    fn claim_repair(&self, org: Uuid) -> Result<RepairSlot<'_>, CatalogError> {
        let mut repairs = self.repairs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = repairs.get(&org) {
            return Err(CatalogError::RepairRunning(*running));
        }
        repairs.insert(org, RepairProgress::default());
        Ok(RepairSlot {
            repairs: &self.repairs,
            org,
        })
    }

    /// Embeds every active item of the caller's org that has no embedding,
    /// or one by another model, in chunks of 100 texts per Gemini call and one
    /// bulk write per chunk. A chunk that fails is reported item by item in
    /// `failed_items`; the other chunks carry on.
    ///
    /// # Errors
    /// [`CatalogError::NotAllowed`] unless the caller is an admin now; the
    /// database's error when the items cannot even be listed.
    pub async fn repair_embeddings(
        &self,
        caller: &Caller,
        deadline: Deadline,
    ) -> Result<RepairReport, CatalogError> {
        caller.require(Role::Admin)?;
        // Repair writes with the service key, which row-level security does
        // not check: the admin role is read again, not taken from the cache.
        let current = self
            .memberships
            .lookup_fresh(caller.user_id, deadline)
            .await?;
        if !current.is_some_and(|m| m.org_id == caller.org_id && m.role == Role::Admin) {
            return Err(NotAllowed::role(Role::Admin).into());
        }
        self.repair_org(caller.org_id, deadline).await
    }

    /// Embeds the org's active items that lack an embedding by the configured
    /// model, as [`Self::repair_embeddings`] does, for a caller already
    /// entitled to: the admin repair, and the re-embed of every org
    /// (`services::backfill`). Stops short of `deadline` with `complete` false.
    ///
    /// # Errors
    /// [`CatalogError::RepairRunning`] when this org's repair is already
    /// running here; the database's error when the items cannot be listed.
    pub async fn repair_org(
        &self,
        org: Uuid,
        deadline: Deadline,
    ) -> Result<RepairReport, CatalogError> {
        let slot = self.claim_repair(org)?;
        let model = self.embeddings.model_version();
        let (total_items, items_with_embeddings) = self
            .supabase
            .embedding_coverage(org, &model, deadline)
            .await?;
        let mut report = RepairReport {
            total_items,
            items_with_embeddings,
            items_without_embeddings: total_items.saturating_sub(items_with_embeddings),
            complete: true,
            ..RepairReport::default()
        };
        slot.report(&report);
        let mut after = None;
        loop {
            if deadline.remaining() < REPAIR_STOP_MARGIN {
                report.complete = false;
                break;
            }
            let page = match self
                .supabase
                .items_needing_embedding(org, &model, after, REPAIR_PAGE, deadline)
                .await
            {
                Ok(page) => page,
                // Out of time between pages: answer with what was done.
                Err(CallError::DeadlineExceeded { .. }) => {
                    report.complete = false;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            let full_page = page.len() == REPAIR_PAGE;
            let finished = self
                .repair_page(org, &model, page, deadline, &mut report, &slot)
                .await;
            if !finished {
                report.complete = false;
                break;
            }
            if !full_page {
                break;
            }
        }
        tracing::info!(
            org_id = %org,
            repaired = report.repaired,
            failed = report.failed,
            complete = report.complete,
            "embedding repair finished"
        );
        Ok(report)
    }

    async fn repair_page(
        &self,
        org: Uuid,
        model: &str,
        page: Vec<ItemText>,
        deadline: Deadline,
        report: &mut RepairReport,
        slot: &RepairSlot<'_>,
    ) -> bool {
        let chunks: Vec<Vec<ItemText>> = page
            .chunks(MAX_EMBED_BATCH)
            .map(<[ItemText]>::to_vec)
            .collect();
        let ids: Vec<Vec<Uuid>> = chunks
            .iter()
            .map(|chunk| chunk.iter().map(|item| item.id).collect())
            .collect();
        let total = chunks.len();
        // Lazy: whether to start a chunk is decided when a slot frees.
        let tasks =
            chunks
                .into_iter()
                .take_while(|_| deadline.remaining() >= REPAIR_STOP_MARGIN)
                .map(|chunk| {
                    let embeddings = Arc::clone(&self.embeddings);
                    let supabase = self.supabase.clone();
                    let model = model.to_owned();
                    async move {
                        repair_chunk(&embeddings, &supabase, org, &model, chunk, deadline).await
                    }
                });
        let mut fan_out = FanOut::new(tasks, REPAIR_CHUNK_CONCURRENCY);
        while let Some((position, outcome)) = fan_out.next().await {
            let chunk_ids = ids.get(position).map(Vec::as_slice).unwrap_or_default();
            match outcome
                .map_err(CatalogError::from)
                .and_then(|written| written)
            {
                Ok(written) => {
                    report.repaired += written.len() as u64;
                    report
                        .failed_items
                        .extend(chunk_ids.iter().filter(|id| !written.contains(id)));
                }
                Err(error) => {
                    tracing::warn!(error = %error, items = chunk_ids.len(), "embedding repair chunk failed");
                    report.failed_items.extend(chunk_ids);
                }
            }
            report.failed = report.failed_items.len() as u64;
            slot.report(report);
        }
        fan_out.started() == total
    }
}

async fn repair_chunk(
    embeddings: &EmbeddingService,
    supabase: &SupabaseClient,
    org: Uuid,
    model: &str,
    chunk: Vec<ItemText>,
    deadline: Deadline,
) -> Result<Vec<Uuid>, CatalogError> {
    let parts = chunk.iter().map(|item| {
        let (category, description) = (item.category.as_deref(), item.description.as_deref());
        (item.name.as_str(), category, description)
    });
    let vectors = embeddings
        .embed_items(parts, org, deadline.earlier_by(REPAIR_WRITE_RESERVE))
        .await?;
    let rows: Vec<(Uuid, Vec<f32>)> = chunk.iter().map(|item| item.id).zip(vectors).collect();
    Ok(supabase
        .save_embeddings(org, model, &rows, deadline)
        .await?)
}
