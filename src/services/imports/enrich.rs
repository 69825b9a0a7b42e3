//! `enrich=missing`: before a chunk is embedded, Gemini fills what each row
//! that creates an item leaves empty. What the row gives always wins; the
//! natural key (`name`, `sku`, `vendor`) is never filled, so importing the
//! same file again still finds the items it made. One enrichment call per
//! such row, under the org's share of Gemini, at most `concurrency` at once.

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::clients::supabase::ChunkRow;
use crate::domain::{Metadata, Price, ProductUrl};
use crate::resilience::Deadline;
use crate::services::enrichment::{
    Enrichment, EnrichmentError, EnrichmentRequest, EnrichmentService,
};
use crate::services::fan_out::FanOut;

/// The fields enrichment may fill, with the longest text each may hold
/// (the limits `POST /api/catalog/items` holds a member to).
const FILLED_TEXTS: [(&str, usize); 2] = [("description", 10_000), ("category", 100)];

/// Fills the rows of `rows` that create an item and leave a field empty.
///
/// # Errors
/// Gemini's error when it is down: the chunk waits, nothing is written.
/// A row whose answer is unusable stays as the file gave it.
pub(super) async fn fill_missing(
    enrichment: &Arc<EnrichmentService>,
    concurrency: usize,
    rows: &mut [ChunkRow],
    org: Uuid,
    deadline: Deadline,
) -> Result<usize, EnrichmentError> {
    let wanted: Vec<(usize, Map<String, Value>)> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| !row.matched)
        .filter_map(|(position, row)| {
            let item: Map<String, Value> = serde_json::from_str(row.item.get()).ok()?;
            lacks_something(&item).then_some((position, item))
        })
        .collect();
    let asked = wanted.len();
    let requests: Vec<EnrichmentRequest> = wanted
        .iter()
        .map(|(_, item)| EnrichmentRequest {
            product_name: text(item, "name").unwrap_or_default().to_owned(),
            category: text(item, "category").map(str::to_owned),
            additional_context: text(item, "vendor").map(|vendor| format!("Vendor: {vendor}")),
        })
        .collect();
    let tasks = requests.into_iter().map(|request| {
        let enrichment = Arc::clone(enrichment);
        async move { enrichment.enrich(&request, org, deadline).await }
    });
    let mut found: Vec<Option<Enrichment>> = vec![None; asked];
    let mut fan_out = FanOut::new(tasks, concurrency);
    while let Some((position, outcome)) = fan_out.next().await {
        match outcome {
            Ok(Ok(enriched)) => found[position] = Some(enriched),
            Ok(Err(EnrichmentError::Gemini(e))) => return Err(EnrichmentError::Gemini(e)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "import: a row's enrichment is unusable; the row stays as given");
            }
            Err(e) => {
                tracing::error!(error = %e, "import: a row's enrichment task failed; the row stays as given");
            }
        }
    }
    for ((position, mut item), enriched) in wanted.into_iter().zip(found) {
        let (Some(enriched), Some(row)) = (enriched, rows.get_mut(position)) else {
            continue;
        };
        fill(&mut item, &enriched);
        if let Ok(raw) = RawValue::from_string(Value::Object(item.clone()).to_string()) {
            row.item = raw;
            row.text_description = text(&item, "description").map(str::to_owned);
            row.text_category = text(&item, "category").map(str::to_owned);
        }
    }
    Ok(asked)
}

fn text<'a>(item: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    item.get(field).and_then(Value::as_str)
}

fn lacks_something(item: &Map<String, Value>) -> bool {
    [
        "description",
        "category",
        "price",
        "pricing_type",
        "product_url",
    ]
    .iter()
    .any(|field| !item.contains_key(*field))
}

/// What Gemini found, where the row gave nothing; metadata merged (the
/// row's keys win) and marked as enriched. A value past the limits the
/// row itself is held to is left out.
fn fill(item: &mut Map<String, Value>, enriched: &Enrichment) {
    let found_texts = [&enriched.description, &enriched.category];
    for ((field, max_chars), found) in FILLED_TEXTS.into_iter().zip(found_texts) {
        if !item.contains_key(field) && !found.is_empty() && found.chars().count() <= max_chars {
            item.insert(field.to_owned(), json!(found));
        }
    }
    if !item.contains_key("price")
        && let Some(price) = enriched.price.and_then(Price::new)
    {
        item.insert("price".to_owned(), json!(price));
    }
    if !item.contains_key("pricing_type")
        && let Some(pricing_type) = enriched.pricing_type
    {
        item.insert("pricing_type".to_owned(), json!(pricing_type));
    }
    if !item.contains_key("product_url")
        && let Some(url) = enriched.product_url.as_deref().and_then(ProductUrl::new)
    {
        item.insert("product_url".to_owned(), json!(url.as_str()));
    }
    let mut metadata = enriched.metadata.clone();
    if let Some(Value::Object(given)) = item.get("metadata") {
        metadata.extend(given.clone());
    }
    metadata.insert("ai_enriched".into(), json!(true));
    metadata.insert("ai_confidence".into(), json!(enriched.confidence));
    if let Ok(metadata) = Metadata::new(metadata) {
        item.insert("metadata".to_owned(), Value::Object(metadata.into_map()));
    }
}
