//! Catalog reads and writes through PostgREST: items, semantic search and
//! bulk embedding writes. User-scoped calls carry the caller's token so
//! row-level security decides; the service key is used only for embedding
//! repair (coverage, the items to embed, and one bulk write per chunk).

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::page::{OrgRows, status_column};
use super::{Rpc, SupabaseCallError, SupabaseClient};
use crate::domain::{CatalogItem, ItemDraft, ItemStatus, SearchHit};
use crate::resilience::Deadline;

/// An item's text fields, for embedding.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ItemText {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
}

/// An embedding and the model that made it (`models/...`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemEmbedding<'a> {
    pub vector: &'a [f32],
    pub model_version: &'a str,
}

#[derive(Deserialize)]
struct Coverage {
    total_items: u64,
    items_with_embeddings: u64,
}

/// RPC parameters without the null ones. The SQL functions give every
/// optional parameter a default, and leaving one out is the portable way to
/// say "none": some PostgREST-compatible servers pass a JSON null as ''.
pub(super) fn rpc_params(params: Value) -> Value {
    match params {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

/// Items per PostgREST answer when listing: an item holds at most about
/// 120 kB (a 10,000-character description, a 2,048-character URL, 64 KiB of
/// metadata; 0020), so a chunk of the largest stays under 32 MiB, half of
/// [`super::MAX_ANSWER_BYTES`]. A 1,000-item page is four answers.
impl OrgRows for CatalogItem {
    const TABLE: &'static str = "catalog_items";
    const ROWS_PER_ANSWER: usize = 250;
    type Filter = Option<ItemStatus>;

    fn filters(status: &Self::Filter) -> Vec<(&'static str, String)> {
        status_column(status.map(ItemStatus::as_str))
    }
}

/// pgvector's text form, `[0.1,0.2,...]`, which PostgREST casts to `vector`.
pub(super) fn vector_literal(values: &[f32]) -> String {
    let mut text = String::with_capacity(values.len() * 12 + 2);
    text.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&v.to_string());
    }
    text.push(']');
    text
}

impl SupabaseClient {
    /// Active items of the caller's org nearest to `embedding`, best first,
    /// among vectors made by `embedding.model_version` only.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn search_items(
        &self,
        token: &str,
        org_id: Uuid,
        embedding: ItemEmbedding<'_>,
        threshold: f64,
        limit: u32,
        deadline: Deadline,
    ) -> Result<Vec<SearchHit>, SupabaseCallError> {
        // The five-argument overload: only vectors by the query's model.
        let params = json!({
            "query_embedding": vector_literal(embedding.vector),
            "org_uuid": org_id,
            "similarity_threshold": threshold,
            "result_limit": limit,
            "p_model_version": embedding.model_version,
        });
        self.rpc(Rpc::Read(token), "search_catalog_items", &params, deadline)
            .await
    }

    /// Whether an item with this id exists in any org. Asked with the
    /// service key: the function is closed to users, so nobody can probe
    /// other tenants' ids straight through PostgREST; the server only turns
    /// the answer into 403 rather than 404 for an id the caller named.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn item_exists(
        &self,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<bool, SupabaseCallError> {
        let params = json!({ "p_item_id": id });
        self.rpc(Rpc::Service, "catalog_item_exists", &params, deadline)
            .await
    }

    /// Creates an item and its embedding in one transaction, as the caller.
    /// The database checks that the caller is an admin of `org_id`.
    ///
    /// # Errors
    /// [`SupabaseCallError`]; nothing is written when it fails.
    pub(crate) async fn create_item(
        &self,
        token: &str,
        org_id: Uuid,
        created_by: Uuid,
        item: &ItemDraft,
        embedding: ItemEmbedding<'_>,
        deadline: Deadline,
    ) -> Result<CatalogItem, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_org_id": org_id,
            "p_name": item.name,
            "p_description": item.description,
            "p_category": item.category,
            "p_created_by": created_by,
            "p_status": item.status,
            "p_price": item.price,
            "p_pricing_type": item.pricing_type,
            "p_product_url": item.product_url.as_ref().map(|url| url.as_str()),
            "p_vendor": item.vendor,
            "p_sku": item.sku,
            "p_metadata": item.metadata.as_map(),
            "p_embedding": vector_literal(embedding.vector),
            "p_model_version": embedding.model_version,
        }));
        // Not retried on a lost answer: a retry could create the item twice.
        self.rpc(
            Rpc::Write(token),
            "create_catalog_item_with_embedding",
            &params,
            deadline,
        )
        .await
    }

    /// The org's active items, and how many have an embedding by `model_version`.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn embedding_coverage(
        &self,
        org_id: Uuid,
        model_version: &str,
        deadline: Deadline,
    ) -> Result<(u64, u64), SupabaseCallError> {
        let params = json!({ "p_org_id": org_id, "p_model_version": model_version });
        let rows: Vec<Coverage> = self
            .rpc(
                Rpc::Service,
                "catalog_embedding_coverage",
                &params,
                deadline,
            )
            .await?;
        Ok(rows
            .first()
            .map_or((0, 0), |c| (c.total_items, c.items_with_embeddings)))
    }

    /// Up to `limit` (≤ 1,000) active items of the org without an embedding
    /// by `model_version`, by id, after `after`.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn items_needing_embedding(
        &self,
        org_id: Uuid,
        model_version: &str,
        after: Option<Uuid>,
        limit: usize,
        deadline: Deadline,
    ) -> Result<Vec<ItemText>, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_org_id": org_id,
            "p_model_version": model_version,
            "p_after": after,
            "p_limit": limit,
        }));
        self.rpc(
            Rpc::Service,
            "catalog_items_needing_embedding",
            &params,
            deadline,
        )
        .await
    }

    /// Writes embeddings of the org's items in one request (an upsert);
    /// returns the ids written. Safe to retry: writing twice is the same.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn save_embeddings(
        &self,
        org_id: Uuid,
        model_version: &str,
        embeddings: &[(Uuid, Vec<f32>)],
        deadline: Deadline,
    ) -> Result<Vec<Uuid>, SupabaseCallError> {
        let rows: Vec<Value> = embeddings
            .iter()
            .map(|(id, vector)| json!({ "catalog_item_id": id, "embedding": vector_literal(vector) }))
            .collect();
        let params = json!({
            "p_org_id": org_id,
            "p_model_version": model_version,
            "p_embeddings": rows,
        });
        self.rpc(
            Rpc::Service,
            "save_catalog_item_embeddings",
            &params,
            deadline,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_use_pgvector_text_form() {
        assert_eq!(vector_literal(&[0.5, -1.0, 0.25]), "[0.5,-1,0.25]");
        assert_eq!(vector_literal(&[]), "[]");
    }

    #[test]
    fn null_rpc_parameters_are_left_out() {
        assert_eq!(rpc_params(json!({"a": 1, "b": null})), json!({"a": 1}));
    }
}
