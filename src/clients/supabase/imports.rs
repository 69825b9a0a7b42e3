//! Bulk imports through PostgREST (`catalog_import_*`, migration 0021). The
//! upload calls run as the uploading admin, the database taking the org from
//! the caller; the worker's calls (the lease, a chunk's rows, applying a
//! chunk) use the service key. The staged rows' JSON is decided here alone:
//! `catalog_items` column names, only the fields a row gives.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::catalog::{rpc_params, vector_literal};
use super::page::OrgRows;
use super::{Rpc, SupabaseCallError, SupabaseClient};
use crate::domain::{ImportFormat, ImportJob, ImportOptions, ItemDraft, RowError};
use crate::resilience::Deadline;

/// Jobs per answer when listing: a job carries at most 1,000 row errors.
impl OrgRows for ImportJob {
    const TABLE: &'static str = "catalog_imports";
    const ROWS_PER_ANSWER: usize = 50;
    type Filter = ();

    fn filters((): &()) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// The answer to starting an upload.
#[derive(Debug, Deserialize)]
pub(crate) struct BegunImport {
    #[serde(flatten)]
    pub job: ImportJob,
    /// The org already had a job with this idempotency key: `job` is it.
    pub existing: bool,
    /// That job's body hash (none while its upload is still arriving).
    pub body_sha256: Option<String>,
}

/// A job handed to this replica, and the last line its committed chunks covered.
#[derive(Debug, Deserialize)]
pub(crate) struct ClaimedImport {
    #[serde(flatten)]
    pub job: ImportJob,
    pub applied_through: u64,
}

/// A job as this replica holds it: which job, and the holder the lease names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobLease<'a> {
    pub import_id: Uuid,
    pub holder: &'a str,
}

/// What an upload found, for the job's counts: its rows, and those refused.
#[derive(Debug, Default)]
pub(crate) struct UploadTally {
    pub total: u64,
    pub refused: u64,
    /// The first refusals, by line.
    pub errors: Vec<RowError>,
}

/// A valid row of an upload, kept until a chunk applies it.
#[derive(Debug)]
pub(crate) struct StagedRow {
    pub line: u64,
    pub item: ItemDraft,
}

/// A kept row, as the worker reads it back.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkRow {
    pub line: u64,
    /// The fields the row gives, passed back to the database as they are
    /// (unless enrichment fills some in).
    pub item: Box<RawValue>,
    /// Whether it matches an active item (it will update, not create).
    pub matched: bool,
    /// The text the item will be embedded from: the row's, the rest from
    /// the item it matches.
    pub text_name: String,
    pub text_description: Option<String>,
    pub text_category: Option<String>,
    /// The matched item has this text embedded by the current model already.
    pub embedding_current: bool,
}

/// A row of a chunk to apply, with its new embedding when it needs one.
#[derive(Debug, Serialize)]
pub(crate) struct AppliedRow<'a> {
    pub line: u64,
    pub item: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<String>,
}

impl AppliedRow<'_> {
    /// `vector` in pgvector's text form, for [`Self::embedding`].
    pub(crate) fn vector(vector: &[f32]) -> String {
        vector_literal(vector)
    }
}

/// The row's fields as `catalog_items` columns; what it leaves out (and an
/// empty metadata object) is absent, so an update keeps the stored value.
fn item_columns(item: &ItemDraft) -> Value {
    let mut columns = Map::new();
    columns.insert("name".to_owned(), json!(item.name));
    columns.insert("status".to_owned(), json!(item.status));
    let optional = [
        ("description", item.description.as_deref().map(Value::from)),
        ("category", item.category.as_deref().map(Value::from)),
        ("price", item.price.map(|price| json!(price))),
        ("pricing_type", item.pricing_type.map(|p| json!(p))),
        (
            "product_url",
            item.product_url
                .as_ref()
                .map(|url| Value::from(url.as_str())),
        ),
        ("vendor", item.vendor.as_deref().map(Value::from)),
        ("sku", item.sku.as_deref().map(Value::from)),
    ];
    for (column, value) in optional {
        if let Some(value) = value {
            columns.insert(column.to_owned(), value);
        }
    }
    if !item.metadata.as_map().is_empty() {
        columns.insert(
            "metadata".to_owned(),
            Value::Object(item.metadata.as_map().clone()),
        );
    }
    Value::Object(columns)
}

impl SupabaseClient {
    /// Starts an upload for the caller's org, or finds the org's job with
    /// this idempotency key. Tried once: a lost answer leaves at most an
    /// empty upload, dropped within the hour.
    ///
    /// # Errors
    /// [`SupabaseCallError`]; a caller who is not an admin is refused.
    pub(crate) async fn begin_import(
        &self,
        token: &str,
        format: ImportFormat,
        options: ImportOptions,
        idempotency_key: Option<&str>,
        deadline: Deadline,
    ) -> Result<BegunImport, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_format": format,
            "p_idempotency_key": idempotency_key,
            "p_mode": options.mode,
            "p_enrich": options.enrich,
        }));
        self.rpc(Rpc::Write(token), "catalog_import_begin", &params, deadline)
            .await
    }

    /// Keeps a batch of an upload's valid rows. Tried once: kept twice, the
    /// rows would collide on their lines.
    ///
    /// # Errors
    /// [`SupabaseCallError`].
    pub(crate) async fn stage_import_rows(
        &self,
        token: &str,
        import_id: Uuid,
        rows: &[StagedRow],
        deadline: Deadline,
    ) -> Result<(), SupabaseCallError> {
        let rows: Vec<Value> = rows
            .iter()
            .map(|row| json!({ "line": row.line, "item": item_columns(&row.item) }))
            .collect();
        let params = json!({ "p_import_id": import_id, "p_rows": rows });
        let _kept: u64 = self
            .rpc(Rpc::Write(token), "catalog_import_stage", &params, deadline)
            .await?;
        Ok(())
    }

    /// Ends an upload: the job is queued (or complete, when no row was valid).
    ///
    /// # Errors
    /// [`SupabaseCallError`].
    pub(crate) async fn seal_import(
        &self,
        token: &str,
        import_id: Uuid,
        tally: &UploadTally,
        body_sha256: &str,
        deadline: Deadline,
    ) -> Result<ImportJob, SupabaseCallError> {
        let params = json!({
            "p_import_id": import_id,
            "p_total": tally.total,
            "p_failed": tally.refused,
            "p_errors": tally.errors,
            "p_body_sha256": body_sha256,
        });
        self.rpc(Rpc::Write(token), "catalog_import_seal", &params, deadline)
            .await
    }

    /// Drops an upload that could not be completed, with its kept rows.
    ///
    /// # Errors
    /// [`SupabaseCallError`].
    pub(crate) async fn discard_import(
        &self,
        token: &str,
        import_id: Uuid,
        deadline: Deadline,
    ) -> Result<(), SupabaseCallError> {
        let params = json!({ "p_import_id": import_id });
        self.rpc::<Value>(
            Rpc::Write(token),
            "catalog_import_discard",
            &params,
            deadline,
        )
        .await?;
        Ok(())
    }

    /// The next job for `holder` to work on, leased for `lease_seconds`.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn claim_import(
        &self,
        holder: &str,
        lease_seconds: u32,
        deadline: Deadline,
    ) -> Result<Option<ClaimedImport>, SupabaseCallError> {
        let params = json!({ "p_holder": holder, "p_lease_seconds": lease_seconds });
        self.rpc(Rpc::Service, "catalog_import_claim", &params, deadline)
            .await
    }

    /// Up to `limit` kept rows of a leased job after line `after`.
    ///
    /// # Errors
    /// [`SupabaseCallError`]; `CA409` when the lease is no longer held.
    pub(crate) async fn import_chunk(
        &self,
        lease: JobLease<'_>,
        after: u64,
        limit: usize,
        model_version: &str,
        deadline: Deadline,
    ) -> Result<Vec<ChunkRow>, SupabaseCallError> {
        let params = json!({
            "p_import_id": lease.import_id,
            "p_holder": lease.holder,
            "p_after": after,
            "p_limit": limit,
            "p_model_version": model_version,
        });
        self.rpc(Rpc::Service, "catalog_import_chunk", &params, deadline)
            .await
    }

    /// Applies a chunk in one transaction and renews the lease. Retried: a
    /// chunk sent again after a lost answer is recognised and changes nothing.
    ///
    /// # Errors
    /// [`SupabaseCallError`]; `CA409` when the lease is no longer held.
    pub(crate) async fn apply_import_chunk(
        &self,
        lease: JobLease<'_>,
        after: u64,
        rows: &[AppliedRow<'_>],
        model_version: &str,
        lease_seconds: u32,
        deadline: Deadline,
    ) -> Result<ImportJob, SupabaseCallError> {
        let params = json!({
            "p_import_id": lease.import_id,
            "p_holder": lease.holder,
            "p_after": after,
            "p_rows": rows,
            "p_model_version": model_version,
            "p_lease_seconds": lease_seconds,
        });
        self.rpc(Rpc::Service, "catalog_import_apply", &params, deadline)
            .await
    }

    /// Renews the lease (0 gives it up) and records whether the job is
    /// paused, and why. False when `holder` no longer holds it.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn report_import(
        &self,
        lease: JobLease<'_>,
        lease_seconds: u32,
        paused_reason: Option<&str>,
        deadline: Deadline,
    ) -> Result<bool, SupabaseCallError> {
        let params = rpc_params(json!({
            "p_import_id": lease.import_id,
            "p_holder": lease.holder,
            "p_lease_seconds": lease_seconds,
            "p_paused_reason": paused_reason,
        }));
        self.rpc(Rpc::Service, "catalog_import_report", &params, deadline)
            .await
    }
}
