//! The catalog: semantic search, items (list with keyset pagination, fetch,
//! atomic create with embedding) and embedding repair. Reads and creates run
//! as the caller so row-level security has the last word; only repair uses
//! the service key, and it embeds in `batchEmbedContents` chunks written with
//! one bulk request each (in `repair`).

mod repair;

pub use repair::{RepairProgress, RepairReport};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::auth::{Caller, NotAllowed};
use crate::clients::gemini::GeminiCallError;
use crate::clients::supabase::{ItemEmbedding, SupabaseCallError, SupabaseClient};
use crate::domain::{
    CatalogItem, ItemDraft, ItemStatus, Page, PageRequest, Role, SearchHit, TaskType,
};
use crate::resilience::Deadline;
use crate::services::embeddings::{EmbeddingError, EmbeddingService};
use crate::services::fan_out::TaskFailed;
use crate::services::membership::MembershipDirectory;
use crate::services::query_cache::{QueryCacheStatus, QueryEmbeddingCache};

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Gemini could not embed the text.
    #[error(transparent)]
    Gemini(#[from] GeminiCallError),
    /// The database call failed or was refused.
    #[error(transparent)]
    Database(#[from] SupabaseCallError),
    /// The caller's role does not allow this.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// A background task failed (a bug).
    #[error(transparent)]
    TaskFailed(#[from] TaskFailed),
    /// The database answered with something that cannot be right.
    #[error("unexpected database answer: {0}")]
    Inconsistent(&'static str),
    /// No such item.
    #[error("catalog item not found")]
    NotFound,
    /// The item exists but belongs to another organisation.
    #[error("catalog item belongs to another organisation")]
    OtherOrg,
    /// A repair of this org is already running.
    #[error("an embedding repair of this organisation is already running")]
    RepairRunning(RepairProgress),
}

/// Catalog use cases.
#[derive(Debug)]
pub struct CatalogService {
    supabase: SupabaseClient,
    embeddings: Arc<EmbeddingService>,
    /// Search queries' embeddings; `None` when `QUERY_CACHE_MB` is 0.
    query_cache: Option<QueryEmbeddingCache>,
    /// Roles, read fresh before work the service key does for a caller.
    memberships: Arc<MembershipDirectory>,
    /// Repairs running now, by org: one at a time per org, so two admins
    /// (or one impatient one) never pay Gemini twice for the same items.
    repairs: Mutex<HashMap<Uuid, RepairProgress>>,
}

impl CatalogService {
    /// A service over `supabase`, embedding with `embeddings`, search
    /// queries through `query_cache` when given, checking roles in `memberships`.
    pub fn new(
        supabase: SupabaseClient,
        embeddings: Arc<EmbeddingService>,
        query_cache: Option<QueryEmbeddingCache>,
        memberships: Arc<MembershipDirectory>,
    ) -> Self {
        Self {
            supabase,
            embeddings,
            query_cache,
            memberships,
            repairs: Mutex::new(HashMap::new()),
        }
    }

    /// The query cache's size, for readiness; `None` when it is off.
    pub fn query_cache_status(&self) -> Option<QueryCacheStatus> {
        self.query_cache.as_ref().map(QueryEmbeddingCache::status)
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
        let hits = self
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
            .await?;
        Ok(hits)
    }

    /// A page of the caller's org's items, newest first.
    ///
    /// # Errors
    /// The database's error.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<ItemStatus>,
        page: PageRequest,
        deadline: Deadline,
    ) -> Result<Page<CatalogItem>, CatalogError> {
        let token = &caller.access_token;
        Ok(self
            .supabase
            .list_page(token, caller.org_id, &status, page, deadline)
            .await?)
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
        let item: Option<CatalogItem> = self.supabase.row_by_id(token, id, deadline).await?;
        if let Some(item) = item {
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
    /// if embedding fails nothing is written. Admins only.
    ///
    /// # Errors
    /// [`CatalogError`] from the role check, Gemini or the database.
    pub async fn create(
        &self,
        caller: &Caller,
        item: &ItemDraft,
        deadline: Deadline,
    ) -> Result<CatalogItem, CatalogError> {
        caller.require(Role::Admin)?;
        let parts = (
            item.name.as_str(),
            item.category.as_deref(),
            item.description.as_deref(),
        );
        let vectors = self
            .embeddings
            .embed_items([parts], caller.org_id, deadline)
            .await?;
        let vector = vectors.first().map(Vec::as_slice).unwrap_or_default();
        let model_version = self.embeddings.model_version();
        let embedding = ItemEmbedding {
            vector,
            model_version: &model_version,
        };
        let created = self
            .supabase
            .create_item(
                &caller.access_token,
                caller.org_id,
                caller.user_id,
                item,
                embedding,
                deadline,
            )
            .await;
        let row = self
            .memberships
            .heed_refusal(caller.user_id, created)
            .await?;
        Ok(row)
    }
}

impl From<EmbeddingError> for CatalogError {
    fn from(error: EmbeddingError) -> Self {
        match error {
            EmbeddingError::Gemini(e) => Self::Gemini(e),
            EmbeddingError::TaskFailed(e) => Self::TaskFailed(e),
        }
    }
}
