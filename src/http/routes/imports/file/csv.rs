//! CSV by RFC 4180, records assembled across body chunks: the header row
//! names the columns (the item fields' API names), each record after it
//! becomes the JSON object `POST /api/catalog/items` would take.

use serde_json::{Map, Number, Value};

use super::{COLUMNS, FileError, MAX_FIELDS, MAX_RECORD_BYTES, Row, item_row, refused};

/// CSV by RFC 4180 (quoted fields may hold commas, quotes and newlines),
/// records assembled across chunks.
pub(super) struct CsvRows {
    reader: csv_core::Reader,
    /// The record being read: its fields' bytes, end to end.
    record: Vec<u8>,
    /// Where each field of the record ends in `record`.
    ends: [usize; MAX_FIELDS],
    record_len: usize,
    fields: usize,
    /// Whether a record has begun (blank lines between records are skipped).
    in_record: bool,
    /// Newlines read so far, and the line the current record began on.
    newlines: u64,
    record_line: u64,
    /// The header's columns, once read.
    header: Option<Vec<&'static str>>,
}

impl CsvRows {
    pub(super) fn new() -> Self {
        Self {
            reader: csv_core::Reader::new(),
            record: vec![0; MAX_RECORD_BYTES],
            ends: [0; MAX_FIELDS],
            record_len: 0,
            fields: 0,
            in_record: false,
            newlines: 0,
            record_line: 0,
            header: None,
        }
    }

    pub(super) fn feed(&mut self, mut input: &[u8], rows: &mut Vec<Row>) -> Result<(), FileError> {
        loop {
            if !self.in_record {
                let blank = input
                    .iter()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
                let (skipped, rest) = input.split_at(blank);
                self.newlines += count_newlines(skipped);
                input = rest;
                if input.is_empty() {
                    return Ok(());
                }
                self.in_record = true;
                self.record_line = self.newlines + 1;
            }
            let (result, read) = self.read(input);
            let (consumed, rest) = input.split_at(read.min(input.len()));
            self.newlines += count_newlines(consumed);
            input = rest;
            match result {
                csv_core::ReadRecordResult::InputEmpty | csv_core::ReadRecordResult::End => {
                    return Ok(());
                }
                csv_core::ReadRecordResult::Record => self.take_record(rows)?,
                full => return Err(self.too_big(full)),
            }
        }
    }

    pub(super) fn end(&mut self, rows: &mut Vec<Row>) -> Result<(), FileError> {
        while self.in_record {
            match self.read(&[]).0 {
                csv_core::ReadRecordResult::Record => self.take_record(rows)?,
                csv_core::ReadRecordResult::End | csv_core::ReadRecordResult::InputEmpty => break,
                full => return Err(self.too_big(full)),
            }
        }
        if self.header.is_none() {
            return Err(FileError::Malformed(
                "the file is empty: a CSV import starts with a header row naming its columns"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Feeds `input` to the parser after what the record holds; what it
    /// made of it, and how many bytes it read.
    fn read(&mut self, input: &[u8]) -> (csv_core::ReadRecordResult, usize) {
        let output = self.record.get_mut(self.record_len..).unwrap_or_default();
        let ends = self.ends.get_mut(self.fields..).unwrap_or_default();
        // The ends count from the record's start, across calls.
        let (result, read, written, ended) = self.reader.read_record(input, output, ends);
        self.record_len += written;
        self.fields += ended;
        (result, read)
    }

    fn too_big(&self, full: csv_core::ReadRecordResult) -> FileError {
        FileError::Malformed(match full {
            csv_core::ReadRecordResult::OutputEndsFull => format!(
                "the record on line {} has more than {MAX_FIELDS} fields",
                self.record_line
            ),
            _ => format!(
                "the record on line {} is longer than {MAX_RECORD_BYTES} bytes",
                self.record_line
            ),
        })
    }

    /// The record just read: the header, or a row.
    fn take_record(&mut self, rows: &mut Vec<Row>) -> Result<(), FileError> {
        let mut start = 0;
        let mut fields = Vec::with_capacity(self.fields);
        for &end in self.ends.iter().take(self.fields) {
            fields.push(self.record.get(start..end).unwrap_or_default());
            start = end;
        }
        let line = self.record_line;
        match &self.header {
            None => self.header = Some(header(&fields)?),
            Some(columns) => rows.push(csv_row(line, columns, &fields)),
        }
        self.record_len = 0;
        self.fields = 0;
        self.in_record = false;
        Ok(())
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// The header's columns: each an item field's API name, once, `name` among them.
fn header(fields: &[&[u8]]) -> Result<Vec<&'static str>, FileError> {
    let mut columns: Vec<&'static str> = Vec::with_capacity(fields.len());
    for field in fields {
        let name = std::str::from_utf8(field).unwrap_or_default().trim();
        let Some(column) = COLUMNS.iter().copied().find(|column| *column == name) else {
            return Err(FileError::Malformed(format!(
                "the header names an unknown column `{}`; columns are {}",
                name.chars().take(100).collect::<String>(),
                COLUMNS.join(", ")
            )));
        };
        if columns.contains(&column) {
            return Err(FileError::Malformed(format!(
                "the header names the column `{column}` twice"
            )));
        }
        columns.push(column);
    }
    if !columns.contains(&"name") {
        return Err(FileError::Malformed(
            "the header has no `name` column: every item needs a name".to_owned(),
        ));
    }
    Ok(columns)
}

/// A CSV record as the JSON object the API would take: an empty cell is an
/// absent field, `price` a number when it reads as one, `metadata` JSON.
fn csv_row(line: u64, columns: &[&'static str], fields: &[&[u8]]) -> Row {
    if fields.len() != columns.len() {
        return refused(
            line,
            None,
            format!(
                "the record has {} fields; the header names {}",
                fields.len(),
                columns.len()
            ),
        );
    }
    let mut object = Map::new();
    for (&column, &cell) in columns.iter().zip(fields) {
        let Ok(text) = std::str::from_utf8(cell) else {
            return refused(line, Some(column), format!("{column} is not valid UTF-8"));
        };
        if text.is_empty() {
            continue;
        }
        let value = match column {
            "price" => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or_else(|| Value::from(text), Value::Number),
            "metadata" => serde_json::from_str(text).unwrap_or_else(|_| Value::from(text)),
            _ => Value::from(text),
        };
        object.insert(column.to_owned(), value);
    }
    item_row(line, Value::Object(object))
}
