//! Applies queued imports in the background, one job at a time per replica.
//!
//! The database hands out the work (migration 0021): a claimed job is leased
//! to this replica, renewed while it works, and a replica that stops (or
//! dies) leaves the job to whichever replica claims it next, from the last
//! committed chunk. A chunk is at most [`CHUNK_ROWS`] rows: one
//! `batchEmbedContents` call for the rows whose text is new (after Gemini
//! fills what new rows leave empty, with `enrich=missing`; none with
//! `mode=proposals`, whose approval embeds), then one transaction for the
//! rows and their audit events. When Gemini or the
//! database is down the job is marked paused and the same chunk is tried
//! again, with growing waits; nothing is written twice because the database
//! recognises a chunk it already applied.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::clients::supabase::{
    AppliedRow, Breach, ChunkRow, ClaimedImport, JobLease, Refusal, SupabaseCallError,
    SupabaseClient, SupabaseError,
};
use crate::domain::{ImportEnrichment, ImportJob, ImportMode, ImportOptions};
use crate::resilience::{CallError, Deadline};
use crate::services::embeddings::EmbeddingService;
use crate::services::enrichment::EnrichmentService;
use crate::services::lease::{LEASE, LEASE_CALL_BUDGET as CALL_BUDGET, lease_seconds};

/// Rows per chunk: one `batchEmbedContents` call's worth.
const CHUNK_ROWS: usize = 100;
/// Time for one chunk (its read, enrichment, embedding and write, retries
/// included); the lease is renewed meanwhile.
const CHUNK_BUDGET: Duration = Duration::from_secs(120);
/// How often the holder renews its lease while it works.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// How often an idle worker asks for work queued on another replica (its
/// own uploads wake it at once).
const POLL_EVERY: Duration = Duration::from_secs(5);
/// The first wait of a paused job; it doubles up to [`PAUSE_MAX`].
const PAUSE_FIRST: Duration = Duration::from_secs(1);
const PAUSE_MAX: Duration = Duration::from_secs(30);

/// This replica's import worker.
#[derive(Debug)]
pub struct ImportWorker {
    supabase: SupabaseClient,
    embeddings: Arc<EmbeddingService>,
    enrichment: Arc<EnrichmentService>,
    /// Rows of a chunk enriched at once (`BATCH_CONCURRENCY`).
    enrich_concurrency: usize,
    /// Told when an upload here queues a job.
    queued: Arc<Notify>,
    /// This process, as the lease names it.
    holder: String,
}

impl ImportWorker {
    /// A worker embedding with `embeddings`, filling rows with `enrichment`
    /// (`enrich_concurrency` at once), woken by `queued`.
    pub fn new(
        supabase: SupabaseClient,
        embeddings: Arc<EmbeddingService>,
        enrichment: Arc<EnrichmentService>,
        enrich_concurrency: usize,
        queued: Arc<Notify>,
    ) -> Self {
        Self {
            supabase,
            embeddings,
            enrichment,
            enrich_concurrency,
            queued,
            holder: format!("catalogai-{}", Uuid::new_v4()),
        }
    }

    /// Works on queued jobs until `stop` completes; a job in hand then has
    /// its lease given up, so another replica resumes it at once.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut current: Option<Uuid> = None;
        tokio::select! {
            () = self.work_forever(&mut current) => {}
            () = stop => {}
        }
        if let Some(import_id) = current {
            let lease = JobLease {
                import_id,
                holder: &self.holder,
            };
            if let Err(e) = self
                .supabase
                .report_import(lease, 0, None, Deadline::after(CALL_BUDGET))
                .await
            {
                tracing::warn!(%import_id, error = %e, "import: could not give up the lease; it runs out in {}s", LEASE.as_secs());
            }
        }
    }

    async fn work_forever(&self, current: &mut Option<Uuid>) {
        loop {
            match self
                .supabase
                .claim_import(&self.holder, lease_seconds(), Deadline::after(CALL_BUDGET))
                .await
            {
                Ok(Some(claimed)) => {
                    *current = Some(claimed.job.id);
                    self.work_on(claimed).await;
                    *current = None;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "import: cannot ask the database for work; asking again in {}s", POLL_EVERY.as_secs());
                }
            }
            tokio::select! {
                () = self.queued.notified() => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    async fn work_on(&self, claimed: ClaimedImport) {
        let job = &claimed.job;
        let lease = JobLease {
            import_id: job.id,
            holder: &self.holder,
        };
        tracing::info!(import_id = %job.id, org_id = %job.org_id, rows = job.total, from_line = claimed.applied_through, "import: applying");
        tokio::select! {
            () = self.apply_chunks(lease, &claimed) => {}
            () = self.keep_lease(lease) => {
                tracing::warn!(import_id = %job.id, "import: lost the lease to another replica; leaving the job to it");
            }
        }
    }

    /// Renews the lease until it is lost (then returns).
    async fn keep_lease(&self, lease: JobLease<'_>) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self
                .supabase
                .report_import(lease, lease_seconds(), None, Deadline::after(CALL_BUDGET))
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                // The lease has time left; the next renewal may get through.
                Err(e) => {
                    tracing::warn!(import_id = %lease.import_id, error = %e, "import: could not renew the lease");
                }
            }
        }
    }

    /// Applies the job's chunks until it completes or is not ours any more.
    async fn apply_chunks(&self, lease: JobLease<'_>, claimed: &ClaimedImport) {
        let job = &claimed.job;
        let mut after = claimed.applied_through;
        let mut pause = PAUSE_FIRST;
        loop {
            match self
                .apply_next_chunk(lease, job.org_id, job.options(), after)
                .await
            {
                Ok(applied) => {
                    pause = PAUSE_FIRST;
                    after = applied.through;
                    if applied.job.is_finished() {
                        let job = applied.job;
                        tracing::info!(import_id = %job.id, created = job.created, updated = job.updated, unchanged = job.unchanged, failed = job.failed, "import completed");
                        return;
                    }
                }
                Err(ChunkError::LeaseLost) => {
                    tracing::warn!(import_id = %job.id, "import: another replica holds this job now; leaving it");
                    return;
                }
                Err(ChunkError::Dependency(reason)) => {
                    tracing::warn!(import_id = %job.id, after_line = after, reason = %reason, "import paused; trying the chunk again in {}s", pause.as_secs());
                    match self
                        .supabase
                        .report_import(
                            lease,
                            lease_seconds(),
                            Some(&reason),
                            Deadline::after(CALL_BUDGET),
                        )
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => return,
                        // The lease has time left; the next attempt may get through.
                        Err(e) => {
                            tracing::warn!(import_id = %job.id, error = %e, "import: could not record the pause");
                        }
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(PAUSE_MAX);
                }
            }
        }
    }

    /// Reads, embeds and applies the chunk after line `after`.
    async fn apply_next_chunk(
        &self,
        lease: JobLease<'_>,
        org_id: Uuid,
        options: ImportOptions,
        after: u64,
    ) -> Result<Applied, ChunkError> {
        let deadline = Deadline::after(CHUNK_BUDGET);
        let model_version = self.embeddings.model_version();
        let mut rows = self
            .supabase
            .import_chunk(lease, after, CHUNK_ROWS, &model_version, deadline)
            .await
            .map_err(|e| ChunkError::database(&e))?;
        // The database planned each row against the catalog before the
        // chunk: a second row for the same item would be planned against
        // what the first is about to change. It starts the next chunk.
        rows.truncate(distinct_items(&rows));
        if options.enrich == Some(ImportEnrichment::Missing) {
            super::enrich::fill_missing(
                &self.enrichment,
                self.enrich_concurrency,
                &mut rows,
                org_id,
                deadline,
            )
            .await
            .map_err(|e| ChunkError::Dependency(format!("Gemini: {e}")))?;
        }
        // A proposal's item is embedded when it is approved.
        let embeds = options.mode == ImportMode::Items;
        let to_embed: Vec<&ChunkRow> = rows
            .iter()
            .filter(|row| embeds && !row.embedding_current)
            .collect();
        let vectors = if to_embed.is_empty() {
            Vec::new()
        } else {
            let parts = to_embed.iter().map(|row| {
                let category = row.text_category.as_deref();
                (
                    row.text_name.as_str(),
                    category,
                    row.text_description.as_deref(),
                )
            });
            self.embeddings
                .embed_items(parts, org_id, deadline)
                .await
                .map_err(|e| ChunkError::Dependency(format!("Gemini: {e}")))?
        };
        let mut vectors = vectors.into_iter();
        let applied: Vec<AppliedRow<'_>> = rows
            .iter()
            .map(|row| AppliedRow {
                line: row.line,
                item: &row.item,
                embedding: if !embeds || row.embedding_current {
                    None
                } else {
                    vectors.next().map(|v| AppliedRow::vector(&v))
                },
            })
            .collect();
        let through = rows.last().map_or(after, |row| row.line);
        let job = self
            .supabase
            .apply_import_chunk(
                lease,
                after,
                &applied,
                &model_version,
                lease_seconds(),
                deadline,
            )
            .await
            .map_err(|e| ChunkError::database(&e))?;
        Ok(Applied { job, through })
    }
}

/// How many leading rows of `rows` name distinct items: by `sku`, or
/// without one by `vendor` and `name`, as the database matches them.
fn distinct_items(rows: &[ChunkRow]) -> usize {
    #[derive(serde::Deserialize)]
    struct Key {
        sku: Option<String>,
        vendor: Option<String>,
        name: Option<String>,
    }
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter()
        .take_while(|row| {
            let key = match serde_json::from_str::<Key>(row.item.get()) {
                Ok(Key { sku: Some(sku), .. }) => (Some(sku), None, None),
                Ok(Key { vendor, name, .. }) => (None, vendor, name),
                // Unreadable here, it is the database's to refuse.
                Err(_) => return true,
            };
            seen.insert(key)
        })
        .count()
}

/// A chunk applied, and the last line it covered.
struct Applied {
    job: ImportJob,
    through: u64,
}

/// Why a chunk was not applied.
enum ChunkError {
    /// The lease is not ours any more (it ran out and another replica
    /// took the job), or the job moved on without us: claim afresh.
    LeaseLost,
    /// A dependency failed; the chunk is tried again after a pause.
    Dependency(String),
}

impl ChunkError {
    fn database(error: &SupabaseCallError) -> Self {
        match error {
            CallError::Upstream(SupabaseError::Refused {
                reason: Refusal::Rule(Breach::Conflict),
                ..
            }) => Self::LeaseLost,
            other => Self::Dependency(format!("database: {other}")),
        }
    }
}
