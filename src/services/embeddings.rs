//! Embeddings: texts to vectors through `batchEmbedContents`, at most 100
//! texts per call, several calls in parallel under the global Gemini limit,
//! results in input order with `EMBEDDING_DIMENSION` values, normalised.

use std::sync::Arc;

use uuid::Uuid;

use crate::clients::gemini::{GeminiCallError, GeminiClient, MAX_EMBED_BATCH};
use crate::domain::TaskType;
use crate::resilience::{CallError, Deadline, TenantShare};
use crate::services::fan_out::{FanOut, TaskFailed};

/// Embeds texts.
#[derive(Debug)]
pub struct EmbeddingService {
    gemini: GeminiClient,
    chunk_concurrency: usize,
    share: Arc<TenantShare>,
}

impl EmbeddingService {
    /// Gemini calls embedding `texts` texts makes: one per
    /// `batchEmbedContents` chunk (what the caller's rate limit is charged).
    pub fn gemini_calls(&self, texts: usize) -> usize {
        texts.div_ceil(MAX_EMBED_BATCH)
    }

    /// A service calling `gemini`, with at most `chunk_concurrency` calls of
    /// one request in flight.
    /// Each chunk holds a slot of its org's `share` while it runs.
    pub fn new(gemini: GeminiClient, chunk_concurrency: usize, share: Arc<TenantShare>) -> Self {
        Self {
            gemini,
            chunk_concurrency: chunk_concurrency.max(1),
            share,
        }
    }

    /// The model that makes the vectors, as stored with them (`models/...`).
    pub fn model_version(&self) -> String {
        self.gemini.embedding_model_version()
    }

    /// One vector per text, in order.
    ///
    /// # Errors
    /// The first chunk's error; the other chunks are cancelled.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        task_type: TaskType,
        org: Uuid,
        deadline: Deadline,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.len() <= MAX_EMBED_BATCH {
            return Ok(
                embed_chunk(&self.gemini, &self.share, &texts, task_type, org, deadline).await?,
            );
        }
        let chunks: Vec<Vec<String>> = texts
            .chunks(MAX_EMBED_BATCH)
            .map(<[String]>::to_vec)
            .collect();
        let mut results: Vec<Vec<Vec<f32>>> = vec![Vec::new(); chunks.len()];
        let tasks = chunks.into_iter().map(|chunk| {
            let gemini = self.gemini.clone();
            let share = Arc::clone(&self.share);
            async move { embed_chunk(&gemini, &share, &chunk, task_type, org, deadline).await }
        });
        // Returning early drops the fan-out, which cancels the other chunks.
        let mut fan_out = FanOut::new(tasks, self.chunk_concurrency);
        while let Some((position, outcome)) = fan_out.next().await {
            let vectors = outcome??;
            if let Some(slot) = results.get_mut(position) {
                *slot = vectors;
            }
        }
        Ok(results.into_iter().flatten().collect())
    }
}

impl EmbeddingService {
    /// Embeds catalog items as documents to be found, one vector per item
    /// in order, each from its [`ItemParts`] joined as the original did
    /// (`name | Category: category | description`): what catalog writes,
    /// approvals, repair and imports store.
    ///
    /// # Errors
    /// [`EmbeddingError`] as [`Self::embed`].
    pub async fn embed_items<'a>(
        &self,
        items: impl IntoIterator<Item = ItemParts<'a>>,
        org: Uuid,
        deadline: Deadline,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let texts = items
            .into_iter()
            .map(|(name, category, description)| catalog_item_text(name, category, description))
            .collect();
        self.embed(texts, TaskType::RetrievalDocument, org, deadline)
            .await
    }
}

/// What of a catalog item its embedding is made from: the name, the
/// category and the description.
pub type ItemParts<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// Why texts could not be embedded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbeddingError {
    /// Gemini failed or could not be reached (after retries).
    #[error(transparent)]
    Gemini(#[from] GeminiCallError),
    /// A chunk's task panicked.
    #[error(transparent)]
    TaskFailed(#[from] TaskFailed),
}

/// One `batchEmbedContents` call, holding one of the org's slots.
async fn embed_chunk(
    gemini: &GeminiClient,
    share: &TenantShare,
    texts: &[String],
    task_type: TaskType,
    org: Uuid,
    deadline: Deadline,
) -> Result<Vec<Vec<f32>>, GeminiCallError> {
    let _slot = share
        .acquire(org, deadline)
        .await
        .map_err(|()| CallError::DeadlineExceeded {
            dependency: "gemini",
        })?;
    gemini.embed_batch(texts, task_type, deadline).await
}

/// The text embedded for a catalog item, as the original built it:
/// `name | Category: category | description`, empty parts left out.
fn catalog_item_text(name: &str, category: Option<&str>, description: Option<&str>) -> String {
    let mut parts = vec![name.trim().to_owned()];
    if let Some(category) = category.map(str::trim).filter(|c| !c.is_empty()) {
        parts.push(format!("Category: {category}"));
    }
    if let Some(description) = description.map(str::trim).filter(|d| !d.is_empty()) {
        parts.push(description.to_owned());
    }
    parts.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_text_leaves_out_empty_parts() {
        assert_eq!(
            catalog_item_text("Pan", Some("Kitchen"), Some("Non-stick.")),
            "Pan | Category: Kitchen | Non-stick."
        );
        assert_eq!(catalog_item_text("Pan", None, Some(" ")), "Pan");
        assert_eq!(catalog_item_text("Pan", Some(""), Some("Big")), "Pan | Big");
    }
}
