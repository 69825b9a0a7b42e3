//! Embeddings: texts to vectors through `batchEmbedContents`, at most 100
//! texts per call, several calls in parallel under the global Gemini limit,
//! results in input order with `EMBEDDING_DIMENSION` values, normalised.

use std::sync::Arc;

use tokio::task::JoinSet;
use uuid::Uuid;

use crate::clients::gemini::{GeminiCallError, GeminiClient, MAX_EMBED_BATCH, TaskType};
use crate::resilience::{CallError, Deadline, TenantShare};

/// Embeds texts.
#[derive(Debug)]
pub struct EmbeddingService {
    gemini: GeminiClient,
    chunk_concurrency: usize,
    share: Arc<TenantShare>,
}

impl EmbeddingService {
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
    /// The first chunk's [`GeminiCallError`]; the other chunks are cancelled.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        task_type: TaskType,
        org: Uuid,
        deadline: Deadline,
    ) -> Result<Vec<Vec<f32>>, GeminiCallError> {
        if texts.len() <= MAX_EMBED_BATCH {
            return embed_chunk(&self.gemini, &self.share, &texts, task_type, org, deadline).await;
        }
        let chunks: Vec<Vec<String>> = texts
            .chunks(MAX_EMBED_BATCH)
            .map(<[String]>::to_vec)
            .collect();
        let mut results: Vec<Option<Vec<Vec<f32>>>> = vec![None; chunks.len()];
        let mut pending = chunks.into_iter().enumerate();
        let mut running = JoinSet::new();
        loop {
            while running.len() < self.chunk_concurrency {
                let Some((index, chunk)) = pending.next() else {
                    break;
                };
                let gemini = self.gemini.clone();
                let share = Arc::clone(&self.share);
                running.spawn(async move {
                    let vectors =
                        embed_chunk(&gemini, &share, &chunk, task_type, org, deadline).await;
                    (index, vectors)
                });
            }
            let Some(finished) = running.join_next().await else {
                break;
            };
            match finished {
                Ok((index, Ok(vectors))) => results[index] = Some(vectors),
                // Returning drops `running`, which cancels the other chunks.
                Ok((_, Err(e))) => return Err(e),
                Err(e) => {
                    return Err(GeminiCallError::Upstream(
                        crate::clients::gemini::GeminiError::Decode(format!(
                            "embedding task failed: {e}"
                        )),
                    ));
                }
            }
        }
        Ok(results.into_iter().flatten().flatten().collect())
    }
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
pub fn catalog_item_text(name: &str, category: Option<&str>, description: Option<&str>) -> String {
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
