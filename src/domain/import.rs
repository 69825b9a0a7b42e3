//! Bulk imports: the job an uploaded file becomes, its counts and the
//! errors of the rows it refused. One shape from the `catalog_imports` row
//! to the answer's body.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ImportFormat, ImportStatus, timestamp};

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
    pub status: ImportStatus,
    /// Why the job is paused (a dependency that is down), while it is.
    pub paused_reason: Option<String>,
    /// Rows in the file.
    pub total: u64,
    /// Rows applied or refused so far.
    pub processed: u64,
    /// Items created.
    pub created: u64,
    /// Items updated (matched by `sku`, or by `vendor` and `name`).
    pub updated: u64,
    /// Rows that matched an item and changed nothing.
    pub unchanged: u64,
    /// Rows refused, on upload or by the database.
    pub failed: u64,
    /// Updates that raised the item's price.
    pub price_up: u64,
    /// Updates that lowered it.
    pub price_down: u64,
    /// The first 1,000 refused rows, by line.
    pub errors: Vec<RowError>,
    #[serde(deserialize_with = "timestamp::six_digits")]
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(deserialize_with = "timestamp::six_digits")]
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[serde(default, deserialize_with = "timestamp::six_digits_or_null")]
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

impl ImportJob {
    /// Whether the job will change no more.
    pub fn is_finished(&self) -> bool {
        self.status == ImportStatus::Completed
    }
}
