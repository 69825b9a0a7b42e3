//! The catalog: semantic search, items (list with keyset pagination, fetch,
//! atomic create with embedding) and embedding repair. Reads and creates run
//! as the caller so row-level security has the last word; only repair uses
//! the service key, and it embeds in `batchEmbedContents` chunks written with
//! one bulk request each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::auth::Caller;
use crate::clients::gemini::{GeminiCallError, MAX_EMBED_BATCH, TaskType};
use crate::clients::supabase::{
    CatalogItem, ItemEmbedding, ItemKey, ItemText, NewItemRow, SearchHit, SupabaseCallError,
    SupabaseClient,
};
use crate::resilience::{CallError, Deadline};
use crate::services::embeddings::{EmbeddingService, catalog_item_text};
use crate::services::query_cache::{QueryCacheStatus, QueryEmbeddingCache};

/// Most rows Supabase's PostgREST returns in one answer (`max_rows`, 1,000
/// by default): asking for more silently gets fewer.
const MAX_ROWS_PER_ANSWER: usize = 1000;

/// Items read per page while repairing (the SQL function's own cap).
const REPAIR_PAGE: usize = 1_000;
/// Chunks of one repair embedded and written at once. Small: repair is
/// background work and must leave Gemini capacity to interactive requests.
const REPAIR_CHUNK_CONCURRENCY: usize = 4;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Gemini could not embed the text.
    #[error(transparent)]
    Gemini(#[from] GeminiCallError),
    /// The database call failed or was refused.
    #[error(transparent)]
    Database(#[from] SupabaseCallError),
    /// No such item.
    #[error("catalog item not found")]
    NotFound,
    /// The item exists but belongs to another organisation.
    #[error("catalog item belongs to another organisation")]
    OtherOrg,
    /// The pagination cursor was not one we issued.
    #[error("cursor is invalid")]
    InvalidCursor,
    /// A repair of this org is already running.
    #[error("an embedding repair of this organisation is already running")]
    RepairRunning(RepairProgress),
}

impl CatalogError {
    /// The database refused the caller (their rights may have changed).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Database(CallError::Upstream(e)) if e.is_refusal())
    }
}

/// One page of items and where the next starts.
#[derive(Debug)]
pub struct ItemPage {
    /// Newest first.
    pub items: Vec<CatalogItem>,
    /// Opaque; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What embedding repair found and did.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct RepairProgress {
    /// Items the running repair set out to embed.
    pub items_to_repair: u64,
    /// Embedded and written so far.
    pub repaired: u64,
    /// Failed so far.
    pub failed: u64,
}

/// Catalog use cases.
#[derive(Debug)]
pub struct CatalogService {
    supabase: SupabaseClient,
    embeddings: Arc<EmbeddingService>,
    /// Search queries' embeddings; `None` when `QUERY_CACHE_MB` is 0.
    query_cache: Option<QueryEmbeddingCache>,
    /// Repairs running now, by org: one at a time per org, so two admins
    /// (or one impatient one) never pay Gemini twice for the same items.
    repairs: Mutex<HashMap<Uuid, RepairProgress>>,
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
    /// A service over `supabase`, embedding with `embeddings`, search
    /// queries through `query_cache` when given.
    pub fn new(
        supabase: SupabaseClient,
        embeddings: Arc<EmbeddingService>,
        query_cache: Option<QueryEmbeddingCache>,
    ) -> Self {
        Self {
            supabase,
            embeddings,
            query_cache,
            repairs: Mutex::new(HashMap::new()),
        }
    }

    /// The query cache's size, for readiness; `None` when it is off.
    pub fn query_cache_status(&self) -> Option<QueryCacheStatus> {
        self.query_cache.as_ref().map(QueryEmbeddingCache::status)
    }

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

    /// Active items of the caller's org semantically nearest to `query`.
    ///
    /// # Errors
    /// [`CatalogError`] from Gemini or the database.
    pub async fn search(
        &self,
        caller: &Caller,
        query: String,
        threshold: f64,
        limit: u32,
        deadline: Deadline,
    ) -> Result<Vec<SearchHit>, CatalogError> {
        let vector: Arc<Vec<f32>> = match &self.query_cache {
            Some(cache) => cache.embed_query(&query, caller.org_id, deadline).await?,
            None => {
                let mut vectors = self
                    .embeddings
                    .embed(
                        vec![query],
                        TaskType::RetrievalQuery,
                        caller.org_id,
                        deadline,
                    )
                    .await?;
                Arc::new(vectors.pop().unwrap_or_default())
            }
        };
        if vector.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .supabase
            .search_items(
                &caller.access_token,
                caller.org_id,
                ItemEmbedding {
                    vector: &vector,
                    model_version: &self.embeddings.model_version(),
                },
                threshold,
                limit,
                deadline,
            )
            .await?)
    }

    /// A page of the caller's org's items, newest first.
    ///
    /// # Errors
    /// [`CatalogError::InvalidCursor`], or the database's error.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
        deadline: Deadline,
    ) -> Result<ItemPage, CatalogError> {
        let after = cursor.map(decode_cursor).transpose()?;
        // One row more than asked says whether another page exists, unless
        // that would ask past Supabase's `max_rows` cap (1,000 by default):
        // a capped answer would look like the last page. At the cap, a full
        // page gets a cursor, and the page after it may be empty.
        let ask = (limit + 1).min(MAX_ROWS_PER_ANSWER);
        let mut items = self
            .supabase
            .list_items(
                &caller.access_token,
                caller.org_id,
                status,
                ask,
                after.as_ref(),
                deadline,
            )
            .await?;
        let more = items.len() > limit || (ask == limit && items.len() == limit);
        let next_cursor = if more {
            items.truncate(limit);
            items.last().map(|last| {
                encode_cursor(&ItemKey {
                    created_at: last.created_at.clone(),
                    id: last.id,
                })
            })
        } else {
            None
        };
        Ok(ItemPage { items, next_cursor })
    }

    /// One item of the caller's org.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`], [`CatalogError::OtherOrg`], or the database's error.
    pub async fn get(
        &self,
        caller: &Caller,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<CatalogItem, CatalogError> {
        let token = &caller.access_token;
        if let Some(item) = self.supabase.get_item(token, id, deadline).await? {
            // Row-level security already hides other orgs' rows; this is belt and braces.
            if item.org_id == caller.org_id {
                return Ok(item);
            }
            return Err(CatalogError::OtherOrg);
        }
        if self.supabase.item_exists(id, deadline).await? {
            Err(CatalogError::OtherOrg)
        } else {
            Err(CatalogError::NotFound)
        }
    }

    /// Embeds the item, then creates item and embedding in one transaction:
    /// if embedding fails nothing is written.
    ///
    /// # Errors
    /// [`CatalogError`] from Gemini or the database.
    pub async fn create(
        &self,
        caller: &Caller,
        item: &NewItemRow,
        deadline: Deadline,
    ) -> Result<CatalogItem, CatalogError> {
        let text = catalog_item_text(
            &item.name,
            item.category.as_deref(),
            item.description.as_deref(),
        );
        let vectors = self
            .embeddings
            .embed(
                vec![text],
                TaskType::RetrievalDocument,
                caller.org_id,
                deadline,
            )
            .await?;
        let vector = vectors.first().map(Vec::as_slice).unwrap_or_default();
        let model_version = self.embeddings.model_version();
        let embedding = ItemEmbedding {
            vector,
            model_version: &model_version,
        };
        Ok(self
            .supabase
            .create_item(
                &caller.access_token,
                caller.org_id,
                caller.user_id,
                item,
                embedding,
                deadline,
            )
            .await?)
    }

    /// Embeds every active item of the caller's org that has no embedding,
    /// or one by another model, in chunks of 100 texts per Gemini call and one
    /// bulk write per chunk. A chunk that fails is reported item by item in
    /// `failed_items`; the other chunks carry on.
    ///
    /// # Errors
    /// The database's error when the items cannot even be listed.
    pub async fn repair_embeddings(
        &self,
        caller: &Caller,
        deadline: Deadline,
    ) -> Result<RepairReport, CatalogError> {
        let org = caller.org_id;
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
        let mut chunks = page
            .chunks(MAX_EMBED_BATCH)
            .map(<[ItemText]>::to_vec)
            .peekable();
        let mut running = JoinSet::new();
        let mut out_of_time = false;
        loop {
            while running.len() < REPAIR_CHUNK_CONCURRENCY && chunks.peek().is_some() {
                if deadline.remaining() < REPAIR_STOP_MARGIN {
                    out_of_time = true;
                    break;
                }
                let Some(chunk) = chunks.next() else { break };
                let embeddings = Arc::clone(&self.embeddings);
                let supabase = self.supabase.clone();
                let model = model.to_owned();
                running.spawn(async move {
                    let ids: Vec<Uuid> = chunk.iter().map(|item| item.id).collect();
                    let outcome =
                        repair_chunk(&embeddings, &supabase, org, &model, chunk, deadline).await;
                    (ids, outcome)
                });
            }
            let Some(finished) = running.join_next().await else {
                break;
            };
            let (ids, outcome) = match finished {
                Ok(done) => done,
                Err(e) => {
                    // Only a panic gets here, and its ids went with it.
                    tracing::error!(error = %e, "embedding repair task failed");
                    continue;
                }
            };
            match outcome {
                Ok(written) => {
                    report.repaired += written.len() as u64;
                    report
                        .failed_items
                        .extend(ids.into_iter().filter(|id| !written.contains(id)));
                }
                Err(error) => {
                    tracing::warn!(error = %error, items = ids.len(), "embedding repair chunk failed");
                    report.failed_items.extend(ids);
                }
            }
            report.failed = report.failed_items.len() as u64;
            slot.report(report);
        }
        !out_of_time
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
    let texts = chunk
        .iter()
        .map(|item| {
            catalog_item_text(
                &item.name,
                item.category.as_deref(),
                item.description.as_deref(),
            )
        })
        .collect();
    let vectors = embeddings
        .embed(
            texts,
            TaskType::RetrievalDocument,
            org,
            deadline.earlier_by(REPAIR_WRITE_RESERVE),
        )
        .await?;
    let rows: Vec<(Uuid, Vec<f32>)> = chunk.iter().map(|item| item.id).zip(vectors).collect();
    Ok(supabase
        .save_embeddings(org, model, &rows, deadline)
        .await?)
}

fn encode_cursor(key: &ItemKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", key.created_at, key.id))
}

fn decode_cursor(cursor: &str) -> Result<ItemKey, CatalogError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CatalogError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| CatalogError::InvalidCursor)?;
    let (created_at, id) = text.split_once('|').ok_or(CatalogError::InvalidCursor)?;
    // The timestamp goes into a PostgREST filter: allow only what one holds.
    let plausible = !created_at.is_empty()
        && created_at.len() <= 40
        && created_at
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | 'T' | 'Z' | ' '));
    if !plausible {
        return Err(CatalogError::InvalidCursor);
    }
    Ok(ItemKey {
        created_at: created_at.to_owned(),
        id: id.parse().map_err(|_| CatalogError::InvalidCursor)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let key = ItemKey {
            created_at: "2026-11-28T20:25:11.529865+00:00".into(),
            id: Uuid::nil(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&key)).unwrap(), key);
        for bad in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("2026-01-01|not-a-uuid"),
            &URL_SAFE_NO_PAD.encode(format!("x\",or(id.gt.0)|{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(Uuid::nil().to_string()),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
