//! Bulk imports: `POST /api/catalog/imports` (a CSV or NDJSON file, read as
//! it arrives), `GET /api/catalog/imports` and `GET
//! /api/catalog/imports/{id}` (as JSON, or with `Accept:
//! application/x-ndjson` a line per change until the job ends), admins
//! only. The rows are read in `file`; the work is in `services::imports`.

mod file;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::auth::Caller;
use crate::domain::{ImportEnrichment, ImportFormat, ImportJob, ImportMode, ImportOptions};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{Params, from_query};
use crate::http::routes::common::{PageQuery, PathId, page_body};
use crate::resilience::Deadline;
use crate::services::imports::Begun;
use crate::state::AppState;

/// The media type of a progress stream (and of an NDJSON import file).
const NDJSON: &str = "application/x-ndjson";
/// How often a progress stream looks at its job.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How long a progress stream lasts at most; a client wanting more asks again.
const PROGRESS_FOR: Duration = Duration::from_secs(3600);
/// Time for one look at the job.
const PROGRESS_READ_BUDGET: Duration = Duration::from_secs(10);
/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Routes of this module. Their bodies are bounded by `IMPORT_MAX_BYTES`
/// as they are read, not by `MAX_BODY_BYTES`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/catalog/imports", get(list_imports).post(start_import))
        .route("/api/catalog/imports/{id}", get(get_import))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(start_import, list_imports, get_import))]
pub struct Api;

/// Loads a file of items into the caller's organisation's catalog
/// (admins). A row whose `sku` (or, without one, `vendor` and `name`)
/// matches an active item updates the fields it gives; any other row
/// creates an item. Rows are checked as `POST /api/catalog/items` checks
/// its body; a bad row is a row error, never the end of the job. The job
/// runs in the background, a chunk of 100 rows at a time.
#[utoipa::path(post, path = "/api/catalog/imports", tag = "catalog",
    params(ImportQuery, ("Idempotency-Key" = Option<String>, Header,
        description = "The same key, file and options give back the same job (200) instead of a new one; the same key with another file or other options is refused (409). At most 255 characters.")),
    request_body(
        description = "CSV with a header row naming the columns (`name` required; `description`, `category`, `status`, `price`, `pricing_type`, `product_url`, `vendor`, `sku`, `metadata` as JSON), or NDJSON (one item object per line). At most IMPORT_MAX_BYTES bytes and IMPORT_MAX_ROWS rows.",
        content((String = "text/csv"), (String = "application/x-ndjson"))),
    responses(
        (status = 202, description = "The job, queued (or complete when no row was valid)", body = ImportJob),
        (status = 200, description = "The job this Idempotency-Key made from the same file", body = ImportJob),
        (status = 400, description = "The file cannot be read as its kind; nothing was kept", body = ErrorEnvelope),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
        (status = 409, description = "The Idempotency-Key was used for another file, or its upload is still arriving", body = ErrorEnvelope),
        (status = 413, description = "Over IMPORT_MAX_BYTES or IMPORT_MAX_ROWS; nothing was kept", body = ErrorEnvelope),
        (status = 415, description = "Not text/csv or application/x-ndjson", body = ErrorEnvelope),
    ))]
async fn start_import(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let options = ImportOptions {
        mode: query.mode.unwrap_or(ImportMode::Items),
        enrich: query.enrich,
    };
    let format = file_format(&headers)?;
    let key = idempotency_key(&headers)?;
    let max_bytes = state.settings.catalog.import_max_bytes;
    if declared_length(&headers).is_some_and(|length| length > max_bytes) {
        return Err(file::FileError::TooLarge(max_bytes).into());
    }
    match state
        .imports
        .begin(&caller, format, options, key, deadline)
        .await?
    {
        Begun::Existing(replay) => {
            let sha256 = file::sha256_of(body, max_bytes).await?;
            let job = replay.job_for(&sha256)?;
            Ok((StatusCode::OK, Json(job)).into_response())
        }
        Begun::New(mut upload) => match file::read_into(body, format, max_bytes, &mut upload).await
        {
            Ok(sha256) => {
                let job = upload.finish(&sha256).await?;
                Ok((StatusCode::ACCEPTED, Json(job)).into_response())
            }
            Err(e) => {
                upload.abandon().await;
                Err(e.into())
            }
        },
    }
}

/// Query of `POST /api/catalog/imports`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `items` (the default): rows create and update items; `proposals`:
    /// rows become pending ADD_ITEM, REPLACE_ITEM or DEPRECATE_ITEM
    /// proposals for a reviewer to approve, and nothing else changes.
    #[serde(default, deserialize_with = "from_query")]
    mode: Option<ImportMode>,
    /// `missing`: Gemini fills what a row that creates an item leaves empty
    /// (description, category, price, pricing type, product URL; metadata
    /// merged), one call per such row; what the row gives always wins.
    #[serde(default, deserialize_with = "from_query")]
    enrich: Option<ImportEnrichment>,
}

page_body!(
    /// Body of `GET /api/catalog/imports`.
    pub ImportList { imports: ImportJob }
);

/// The caller's organisation's imports, newest first (admins).
#[utoipa::path(get, path = "/api/catalog/imports", tag = "catalog",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of imports", body = ImportList),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
    ))]
async fn list_imports(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(page): Params<PageQuery>,
) -> Result<Json<ImportList>, ApiError> {
    let page = state.imports.list(&caller, page.into(), deadline).await?;
    Ok(Json(page.into()))
}

/// One import of the caller's organisation (admins). With `Accept:
/// application/x-ndjson`, a line with the job now and another each time it
/// changes, until it completes (or for an hour at most).
#[utoipa::path(get, path = "/api/catalog/imports/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "The import's id")),
    responses(
        (status = 200, description = "The import; with `Accept: application/x-ndjson`, one such object per line as it changes",
            content((ImportJob = "application/json"), (ImportJob = "application/x-ndjson"))),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
        (status = 404, description = "No such import in the caller's organisation", body = ErrorEnvelope),
    ))]
async fn get_import(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    headers: HeaderMap,
    PathId(id, _): PathId<ImportJob>,
) -> Result<Response, ApiError> {
    let job = state.imports.get(&caller, id, deadline).await?;
    if !wants_ndjson(&headers) {
        return Ok(Json(job).into_response());
    }
    let mut response = Response::new(Body::from_stream(progress(state, caller, job)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    Ok(response)
}

/// The job as a line now, then again whenever it changes, until it
/// completes, cannot be read, or [`PROGRESS_FOR`] has passed.
fn progress(
    state: AppState,
    caller: Caller,
    job: ImportJob,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    struct Watch {
        state: AppState,
        caller: Caller,
        /// The job to send next, or the last one sent.
        job: ImportJob,
        sent: bool,
        until: Instant,
    }
    let watch = Watch {
        state,
        caller,
        job,
        sent: false,
        until: Instant::now() + PROGRESS_FOR,
    };
    stream::unfold(Some(watch), |watch| async move {
        let mut watch = watch?;
        if watch.sent {
            loop {
                if watch.job.is_finished() || Instant::now() >= watch.until {
                    return None;
                }
                tokio::time::sleep(PROGRESS_EVERY).await;
                let id = watch.job.id;
                let now = watch
                    .state
                    .imports
                    .get(&watch.caller, id, Deadline::after(PROGRESS_READ_BUDGET))
                    .await;
                match now {
                    Ok(job) if job.updated_at != watch.job.updated_at => {
                        watch.job = job;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(import_id = %id, error = %e, "import progress: cannot read the job; ending the stream");
                        return None;
                    }
                }
            }
        }
        let mut line = serde_json::to_vec(&watch.job).unwrap_or_default();
        line.push(b'\n');
        watch.sent = true;
        Some((Ok(Bytes::from(line)), Some(watch)))
    })
}

fn file_format(headers: &HeaderMap) -> Result<ImportFormat, ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match essence.as_str() {
        "text/csv" => Ok(ImportFormat::Csv),
        NDJSON | "application/jsonl" => Ok(ImportFormat::Ndjson),
        _ => Err(ApiError::UnsupportedMediaType(
            "an import file must be sent as text/csv or application/x-ndjson".to_owned(),
        )),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.trim().is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(key)),
        _ => Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        ))),
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(NDJSON))
        })
}
