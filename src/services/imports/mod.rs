//! Bulk catalog imports. An upload ([`Upload`]) keeps a file's valid rows in
//! the database as they arrive, batch by batch, and counts the refused ones;
//! sealed, the job is queued and a replica's [`ImportWorker`] applies it a
//! chunk at a time. Reads run as the caller, so row-level security decides
//! who sees a job (admins of its org).
//!
//! The rows arrive already checked: the HTTP edge parses each with the same
//! types as `POST /api/catalog/items` and hands over drafts or refusals.

mod enrich;
mod worker;

pub use worker::ImportWorker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::auth::{Caller, NotAllowed};
use crate::clients::supabase::{
    BegunImport, StagedRow, SupabaseCallError, SupabaseClient, UploadTally,
};
use crate::domain::{
    ImportFormat, ImportJob, ImportOptions, ItemDraft, Page, PageRequest, Role, RowError,
};
use crate::resilience::Deadline;
use crate::services::membership::MembershipDirectory;

/// Valid rows sent to the database in one call while a file arrives.
const STAGE_BATCH: usize = 500;
/// Refused rows whose errors a job keeps (the rest are only counted).
const KEPT_ERRORS: usize = 1000;
/// Time for dropping an upload: its own, as the request's may be what ran out.
const DISCARD_BUDGET: Duration = Duration::from_secs(5);

/// Why an import operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The database call failed or was refused.
    #[error(transparent)]
    Database(#[from] SupabaseCallError),
    /// The caller's role does not allow this.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// No such job (or not one the caller may read).
    #[error("import not found")]
    NotFound,
    /// The file has more rows than an import may.
    #[error("the file has more than {0} rows")]
    TooManyRows(u32),
    /// The idempotency key names a job made from another body (or with other options).
    #[error(
        "this Idempotency-Key was used for an import of a different file or with other options"
    )]
    KeyReused,
    /// The idempotency key names a job whose upload is still arriving.
    #[error("an import with this Idempotency-Key is still being uploaded")]
    KeyInProgress,
}

/// Import use cases: uploads and reading jobs.
#[derive(Debug)]
pub struct ImportService {
    supabase: SupabaseClient,
    memberships: Arc<MembershipDirectory>,
    max_rows: u32,
    /// Told when a job is queued, so this replica's worker starts at once.
    queued: Arc<Notify>,
}

/// How an upload begins.
#[derive(Debug)]
pub enum Begun<'a> {
    /// A new job, ready for its rows.
    New(Upload<'a>),
    /// The org's job with this idempotency key: the same body gives it back.
    Existing(Replay),
}

/// A job an idempotency key already names, the hash of its body, and the
/// options asked for now.
#[derive(Debug)]
pub struct Replay {
    job: ImportJob,
    body_sha256: Option<String>,
    options: ImportOptions,
}

impl Replay {
    /// The job, when `body_sha256` is its body's and it was asked for with
    /// the same options.
    ///
    /// # Errors
    /// [`ImportError::KeyReused`] for another body or other options,
    /// [`ImportError::KeyInProgress`] while that job's body is still arriving.
    pub fn job_for(self, body_sha256: &str) -> Result<ImportJob, ImportError> {
        match self.body_sha256 {
            None => Err(ImportError::KeyInProgress),
            Some(hash) if hash == body_sha256 && self.job.options() == self.options => Ok(self.job),
            Some(_) => Err(ImportError::KeyReused),
        }
    }
}

impl ImportService {
    /// A service over `supabase`; files of at most `max_rows` rows; queued
    /// jobs are announced on `queued`.
    pub fn new(
        supabase: SupabaseClient,
        memberships: Arc<MembershipDirectory>,
        max_rows: u32,
        queued: Arc<Notify>,
    ) -> Self {
        Self {
            supabase,
            memberships,
            max_rows,
            queued,
        }
    }

    /// Starts an upload for the caller's org (admins), or finds the job the
    /// org made with `idempotency_key`.
    ///
    /// # Errors
    /// [`ImportError`] from the role check or the database.
    pub async fn begin<'a>(
        &'a self,
        caller: &'a Caller,
        format: ImportFormat,
        options: ImportOptions,
        idempotency_key: Option<&str>,
        deadline: Deadline,
    ) -> Result<Begun<'a>, ImportError> {
        caller.require(Role::Admin)?;
        let begun = self
            .supabase
            .begin_import(
                &caller.access_token,
                format,
                options,
                idempotency_key,
                deadline,
            )
            .await;
        let BegunImport {
            job,
            existing,
            body_sha256,
        } = self.memberships.heed_refusal(caller.user_id, begun).await?;
        if existing {
            return Ok(Begun::Existing(Replay {
                job,
                body_sha256,
                options,
            }));
        }
        Ok(Begun::New(Upload {
            service: self,
            caller,
            job_id: job.id,
            pending: Vec::with_capacity(STAGE_BATCH),
            tally: UploadTally::default(),
            deadline,
        }))
    }

    /// One job of the caller's org (admins).
    ///
    /// # Errors
    /// [`ImportError::NotFound`] when there is none the caller may read.
    pub async fn get(
        &self,
        caller: &Caller,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<ImportJob, ImportError> {
        caller.require(Role::Admin)?;
        let job: Option<ImportJob> = self
            .supabase
            .row_by_id(&caller.access_token, id, deadline)
            .await?;
        job.filter(|job| job.org_id == caller.org_id)
            .ok_or(ImportError::NotFound)
    }

    /// A page of the caller's org's jobs, newest first (admins).
    ///
    /// # Errors
    /// [`ImportError`] from the role check or the database.
    pub async fn list(
        &self,
        caller: &Caller,
        page: PageRequest,
        deadline: Deadline,
    ) -> Result<Page<ImportJob>, ImportError> {
        caller.require(Role::Admin)?;
        Ok(self
            .supabase
            .list_page(&caller.access_token, caller.org_id, &(), page, deadline)
            .await?)
    }
}

/// A file being received: valid rows go to the database in batches, refused
/// ones are counted. End it with [`Upload::finish`] or [`Upload::abandon`].
#[derive(Debug)]
pub struct Upload<'a> {
    service: &'a ImportService,
    caller: &'a Caller,
    job_id: Uuid,
    pending: Vec<StagedRow>,
    tally: UploadTally,
    deadline: Deadline,
}

impl Upload<'_> {
    /// Takes a valid row of the file.
    ///
    /// # Errors
    /// [`ImportError::TooManyRows`] past the limit, or the database's error.
    pub async fn accept(&mut self, line: u64, item: ItemDraft) -> Result<(), ImportError> {
        self.count_row()?;
        self.pending.push(StagedRow { line, item });
        if self.pending.len() >= STAGE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Counts a refused row of the file (its error kept among the first 1,000).
    ///
    /// # Errors
    /// [`ImportError::TooManyRows`] past the limit.
    pub fn refuse(&mut self, error: RowError) -> Result<(), ImportError> {
        self.count_row()?;
        self.tally.refused += 1;
        if self.tally.errors.len() < KEPT_ERRORS {
            self.tally.errors.push(error);
        }
        Ok(())
    }

    /// Ends the upload: the job is queued and this replica's worker told.
    ///
    /// # Errors
    /// The database's error (the upload is then dropped).
    pub async fn finish(mut self, body_sha256: &str) -> Result<ImportJob, ImportError> {
        let sealed = match self.flush().await {
            Ok(()) => self.seal(body_sha256).await,
            Err(e) => Err(e),
        };
        match sealed {
            Ok(job) => {
                self.service.queued.notify_one();
                tracing::info!(import_id = %job.id, org_id = %job.org_id, rows = job.total, refused = job.failed, "import queued");
                Ok(job)
            }
            Err(e) => {
                self.abandon().await;
                Err(e.into())
            }
        }
    }

    /// Drops the upload and what it kept. Best effort: an upload left
    /// behind is dropped by the database within the hour.
    pub async fn abandon(self) {
        if let Err(e) = self
            .service
            .supabase
            .discard_import(
                &self.caller.access_token,
                self.job_id,
                Deadline::after(DISCARD_BUDGET),
            )
            .await
        {
            tracing::warn!(import_id = %self.job_id, error = %e, "could not drop an unfinished upload; it is dropped within the hour");
        }
    }

    async fn seal(&self, body_sha256: &str) -> Result<ImportJob, SupabaseCallError> {
        self.service
            .supabase
            .seal_import(
                &self.caller.access_token,
                self.job_id,
                &self.tally,
                body_sha256,
                self.deadline,
            )
            .await
    }

    fn count_row(&mut self) -> Result<(), ImportError> {
        self.tally.total += 1;
        if self.tally.total > u64::from(self.service.max_rows) {
            return Err(ImportError::TooManyRows(self.service.max_rows));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SupabaseCallError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.service
            .supabase
            .stage_import_rows(
                &self.caller.access_token,
                self.job_id,
                &self.pending,
                self.deadline,
            )
            .await?;
        self.pending.clear();
        Ok(())
    }
}
