//! An import file read as it arrives: CSV (a header row naming the item
//! fields by their API names, then one item per record) or NDJSON (one
//! item object per line). Each row is checked by the same type as the body
//! of `POST /api/catalog/items`; a bad row becomes a row error with its line
//! number and the reading goes on. Only a file that cannot be read as its
//! kind (no header, an unknown column, a record past the size bound) is
//! refused whole, at once.
//!
//! The body is hashed on the way (the idempotency key's check) and never
//! held whole: memory is one record and one network chunk. The CSV reader
//! is `csv`.

mod csv;

use axum::body::Body;
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::{ImportFormat, ItemDraft, RowError};
use crate::error::ApiError;
use crate::http::extract::from_object;
use crate::http::routes::catalog::NewItemRequest;
use crate::services::imports::{ImportError, Upload};
use csv::CsvRows;

/// Longest CSV record or NDJSON line: an item holds at most about 120 kB.
const MAX_RECORD_BYTES: usize = 256 * 1024;
/// Most fields in a CSV record (the header names at most ten).
const MAX_FIELDS: usize = 32;
/// The columns a CSV header may name: the item fields' API names.
const COLUMNS: &[&str] = &[
    "name",
    "description",
    "category",
    "status",
    "price",
    "pricing_type",
    "product_url",
    "vendor",
    "sku",
    "metadata",
];

/// Why a file was refused whole.
#[derive(Debug, thiserror::Error)]
pub(super) enum FileError {
    /// It cannot be read as its kind.
    #[error("{0}")]
    Malformed(String),
    /// It is larger than `IMPORT_MAX_BYTES`.
    #[error("the file is larger than {0} bytes (IMPORT_MAX_BYTES)")]
    TooLarge(u64),
    /// The body could not be read (the client went away, say).
    #[error("cannot read request body: {0}")]
    Body(String),
    /// Keeping its rows failed.
    #[error(transparent)]
    Import(#[from] ImportError),
}

impl From<FileError> for ApiError {
    fn from(error: FileError) -> Self {
        match error {
            FileError::Malformed(message) | FileError::Body(message) => Self::BadRequest(message),
            FileError::TooLarge(_) => Self::PayloadTooLarge(error.to_string()),
            FileError::Import(e) => e.into(),
        }
    }
}

/// A row of the file: an item, or why it is not one.
#[derive(Debug)]
enum Row {
    Item { line: u64, draft: ItemDraft },
    Refused(RowError),
}

/// Reads `body` as `format` into `upload`, row by row; its SHA-256, in hex.
pub(super) async fn read_into(
    body: Body,
    format: ImportFormat,
    max_bytes: u64,
    upload: &mut Upload<'_>,
) -> Result<String, FileError> {
    let mut parser = match format {
        ImportFormat::Csv => Parser::Csv(Box::new(CsvRows::new())),
        ImportFormat::Ndjson => Parser::Ndjson(NdjsonRows::default()),
    };
    let mut body = HashedBody::new(body, max_bytes);
    let mut rows = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        parser.feed(&chunk, &mut rows)?;
        hand_over(&mut rows, upload).await?;
    }
    parser.end(&mut rows)?;
    hand_over(&mut rows, upload).await?;
    Ok(body.sha256())
}

/// The SHA-256 of `body`, in hex, for comparing a repeated upload.
pub(super) async fn sha256_of(body: Body, max_bytes: u64) -> Result<String, FileError> {
    let mut body = HashedBody::new(body, max_bytes);
    while body.next_chunk().await?.is_some() {}
    Ok(body.sha256())
}

async fn hand_over(rows: &mut Vec<Row>, upload: &mut Upload<'_>) -> Result<(), FileError> {
    for row in rows.drain(..) {
        match row {
            Row::Item { line, draft } => upload.accept(line, draft).await?,
            Row::Refused(error) => upload.refuse(error)?,
        }
    }
    Ok(())
}

/// A request body read chunk by chunk, hashed and bounded on the way.
struct HashedBody {
    chunks: axum::body::BodyDataStream,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
}

impl HashedBody {
    fn new(body: Body, max_bytes: u64) -> Self {
        Self {
            chunks: body.into_data_stream(),
            hasher: Sha256::new(),
            size: 0,
            max_bytes,
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<axum::body::Bytes>, FileError> {
        let Some(chunk) = self.chunks.next().await else {
            return Ok(None);
        };
        let chunk = chunk.map_err(|e| FileError::Body(e.to_string()))?;
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(FileError::TooLarge(self.max_bytes));
        }
        self.hasher.update(&chunk);
        Ok(Some(chunk))
    }

    fn sha256(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

enum Parser {
    // Boxed: the record buffer's bookkeeping is larger than the NDJSON state.
    Csv(Box<CsvRows>),
    Ndjson(NdjsonRows),
}

impl Parser {
    fn feed(&mut self, input: &[u8], rows: &mut Vec<Row>) -> Result<(), FileError> {
        match self {
            Self::Csv(csv) => csv.feed(input, rows),
            Self::Ndjson(ndjson) => ndjson.feed(input, rows),
        }
    }

    fn end(&mut self, rows: &mut Vec<Row>) -> Result<(), FileError> {
        match self {
            Self::Csv(csv) => csv.end(rows),
            Self::Ndjson(ndjson) => {
                ndjson.end(rows);
                Ok(())
            }
        }
    }
}

/// The row `value` stands for, checked as `POST /api/catalog/items` checks its body.
fn item_row(line: u64, value: Value) -> Row {
    match from_object::<NewItemRequest>(value) {
        Ok(request) => Row::Item {
            line,
            draft: request.into(),
        },
        Err(refusal) => Row::Refused(RowError {
            line,
            field: refusal.field,
            message: refusal.message,
        }),
    }
}

fn refused(line: u64, field: Option<&str>, message: impl Into<String>) -> Row {
    Row::Refused(RowError {
        line,
        field: field.map(str::to_owned),
        message: message.into(),
    })
}

/// NDJSON: lines split as they arrive; a line is one item object.
#[derive(Default)]
struct NdjsonRows {
    /// The line being read, up to the chunk's end.
    partial: Vec<u8>,
    /// Lines read so far.
    line: u64,
}

impl NdjsonRows {
    fn feed(&mut self, mut input: &[u8], rows: &mut Vec<Row>) -> Result<(), FileError> {
        while let Some(end) = input.iter().position(|b| *b == b'\n') {
            let (text, rest) = input.split_at(end);
            input = rest.get(1..).unwrap_or_default();
            self.line += 1;
            if self.partial.is_empty() {
                self.read_line(text, rows);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(text);
                self.read_line(&whole, rows);
            }
        }
        self.partial.extend_from_slice(input);
        if self.partial.len() > MAX_RECORD_BYTES {
            return Err(FileError::Malformed(format!(
                "line {} is longer than {MAX_RECORD_BYTES} bytes",
                self.line + 1
            )));
        }
        Ok(())
    }

    fn end(&mut self, rows: &mut Vec<Row>) {
        if !self.partial.is_empty() {
            self.line += 1;
            let last = std::mem::take(&mut self.partial);
            self.read_line(&last, rows);
        }
    }

    fn read_line(&self, text: &[u8], rows: &mut Vec<Row>) {
        let text = text.trim_ascii();
        if text.is_empty() {
            return;
        }
        let row = match serde_json::from_slice::<Value>(text) {
            Ok(value @ Value::Object(_)) => item_row(self.line, value),
            Ok(_) => refused(self.line, None, "the line must be a JSON object"),
            Err(_) => refused(self.line, None, "the line is not valid JSON"),
        };
        rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of `file` read as `format`, fed `chunk` bytes at a time.
    fn rows(format: ImportFormat, file: &str, chunk: usize) -> Result<Vec<String>, String> {
        let mut parser = match format {
            ImportFormat::Csv => Parser::Csv(Box::new(CsvRows::new())),
            ImportFormat::Ndjson => Parser::Ndjson(NdjsonRows::default()),
        };
        let mut rows = Vec::new();
        for piece in file.as_bytes().chunks(chunk.max(1)) {
            parser.feed(piece, &mut rows).map_err(|e| e.to_string())?;
        }
        parser.end(&mut rows).map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|row| match row {
                Row::Item { line, draft } => format!(
                    "{line}: {} | {} | {}",
                    draft.name,
                    draft.description.unwrap_or_default(),
                    draft.price.map_or(String::new(), |p| p.get().to_string())
                ),
                Row::Refused(e) => {
                    format!("{}: {} {}", e.line, e.field.unwrap_or_default(), e.message)
                }
            })
            .collect())
    }

    #[test]
    fn csv_rows_are_the_same_however_the_file_is_split() {
        let file = "name,description,price\n\"Desk, oak\",\"Says \"\"hi\"\"\nand more\",12.5\n\r\nLamp,,x\n\n,no name,1\nChair,\"\",3";
        let whole = rows(ImportFormat::Csv, file, file.len()).unwrap();
        assert_eq!(
            whole,
            [
                "2: Desk, oak | Says \"hi\"\nand more | 12.5",
                "5: price price must be a number",
                "7: name name is required",
                "8: Chair |  | 3",
            ]
        );
        for chunk in 1..file.len() {
            assert_eq!(
                rows(ImportFormat::Csv, file, chunk).unwrap(),
                whole,
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn ndjson_rows_are_the_same_however_the_file_is_split() {
        let file = "{\"name\": \"Desk\", \"price\": 2}\n\n[1]\r\nnot json\n{\"price\": 1}\n{\"name\": \"Lamp\"}";
        let whole = rows(ImportFormat::Ndjson, file, file.len()).unwrap();
        assert_eq!(
            whole,
            [
                "1: Desk |  | 2",
                "3:  the line must be a JSON object",
                "4:  the line is not valid JSON",
                "5: name name is required",
                "6: Lamp |  | ",
            ]
        );
        for chunk in 1..file.len() {
            assert_eq!(
                rows(ImportFormat::Ndjson, file, chunk).unwrap(),
                whole,
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_its_kind_is_refused_whole() {
        let refused = |file: &str| rows(ImportFormat::Csv, file, 7).unwrap_err();
        assert!(refused("").starts_with("the file is empty"));
        assert!(refused("name,size\nA,1").starts_with("the header names an unknown column `size`"));
        assert_eq!(
            refused("sku\nA"),
            "the header has no `name` column: every item needs a name"
        );
        let long = format!("name\n\"{}\"\n", "x".repeat(MAX_RECORD_BYTES + 1));
        assert_eq!(
            refused(&long),
            format!("the record on line 2 is longer than {MAX_RECORD_BYTES} bytes")
        );
        let wide = format!("name\n{}\n", ",".repeat(MAX_FIELDS));
        assert_eq!(
            refused(&wide),
            format!("the record on line 2 has more than {MAX_FIELDS} fields")
        );
    }
}
