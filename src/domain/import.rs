//! Bulk imports: the job an uploaded file becomes, its counts and the
//! errors of the rows it refused. One shape from the `catalog_imports` row
//! to the answer's body.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ImportEnrichment, ImportFormat, ImportMode, ImportStatus, Timestamp};

/// Why one row of an import file was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// The row's line in the file (the header is line 1 of a CSV file).
    pub line: u64,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong, in the words `POST /api/catalog/items` uses.
    pub message: String,
}

/// A bulk import: a `catalog_imports` row, and the answer's body
/// (`ImportBody` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ImportBody, description = "A bulk import and its progress.")]
pub struct ImportJob {
    pub id: Uuid,
    pub org_id: Uuid,
    pub created_by: Uuid,
    pub format: ImportFormat,
    /// Whether rows write the catalog or become proposals.
    pub mode: ImportMode,
    /// What Gemini fills in, if anything.
    pub enrich: Option<ImportEnrichment>,
    pub status: ImportStatus,
    /// Why the job is paused (a dependency that is down), while it is.
    pub paused_reason: Option<String>,
    /// Rows in the file.
    pub total: u64,
    /// Rows applied or refused so far.
    pub processed: u64,
    /// Items created (with `mode=proposals`: ADD_ITEM proposals filed).
    pub created: u64,
    /// Items updated, matched by `sku`, or by `vendor` and `name` (with
    /// `mode=proposals`: REPLACE_ITEM and DEPRECATE_ITEM proposals filed).
    pub updated: u64,
    /// Rows that matched an item and changed nothing.
    pub unchanged: u64,
    /// Rows refused, on upload or by the database.
    pub failed: u64,
    /// Updates (or proposals) that raise the item's price.
    pub price_up: u64,
    /// Updates (or proposals) that lower it.
    pub price_down: u64,
    /// The first 1,000 refused rows, by line.
    pub errors: Vec<RowError>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
}

impl ImportJob {
    /// Whether the job will change no more.
    pub fn is_finished(&self) -> bool {
        self.status == ImportStatus::Completed
    }

    /// The options it was started with.
    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            mode: self.mode,
            enrich: self.enrich,
        }
    }
}

/// How an import's rows are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    pub mode: ImportMode,
    pub enrich: Option<ImportEnrichment>,
}
