//! Product enrichment: turns a product name into structured product data with
//! Gemini's structured output, validates it as the original service did, and
//! fans batches out through the bounded fan-out (`services::fan_out`).
//!
//! Unusable model output (invalid JSON, missing fields) gets one repair
//! attempt that tells the model what was wrong; a second failure is reported
//! as such, distinct from Gemini being unavailable.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::clients::gemini::{GeminiCallError, GeminiClient, GeminiError, StructuredPrompt};
use crate::domain::{Confidence, PricingType};
use crate::resilience::{CallError, Deadline, TenantShare};
use crate::services::fan_out::FanOut;

/// What to enrich: a product name and optional hints.
#[derive(Debug, Clone)]
pub struct EnrichmentRequest {
    /// The product name as the user wrote it.
    pub product_name: String,
    /// A category hint.
    pub category: Option<String>,
    /// Extra context for disambiguation.
    pub additional_context: Option<String>,
}

/// Structured product data, in the original service's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    /// Standardised product name.
    pub name: String,
    /// One or two sentences.
    pub description: String,
    /// Product category.
    pub category: String,
    /// Manufacturer or main vendor.
    pub vendor: String,
    /// Price in USD, when known.
    pub price: Option<f64>,
    /// How the price is charged, when known.
    pub pricing_type: Option<PricingType>,
    /// Official product page, when known.
    pub product_url: Option<String>,
    /// SKU or model number, when known.
    pub sku: Option<String>,
    /// Brand, specs, features.
    pub metadata: Map<String, Value>,
    /// How sure the model is that it knows this exact product.
    pub confidence: Confidence,
}

/// Why a product could not be enriched.
#[derive(Debug, thiserror::Error)]
pub enum EnrichmentError {
    /// Gemini failed or could not be reached (after retries).
    #[error(transparent)]
    Gemini(GeminiCallError),
    /// Gemini answered twice with output we cannot use.
    #[error("unusable model output after a repair attempt: {0}")]
    Unusable(String),
    /// The enrichment's task panicked (a bug).
    #[error(transparent)]
    TaskFailed(crate::services::fan_out::TaskFailed),
}

impl EnrichmentError {
    /// A short, safe explanation for a batch item's `error` field.
    pub fn client_message(&self) -> &'static str {
        match self {
            Self::Unusable(_) => "Gemini returned unusable product data",
            Self::TaskFailed(_) => "enrichment did not complete",
            Self::Gemini(CallError::CircuitOpen { .. } | CallError::RetryBudgetSpent { .. }) => {
                "Gemini is temporarily unavailable"
            }
            Self::Gemini(CallError::DeadlineExceeded { .. }) => "Gemini did not answer in time",
            Self::Gemini(CallError::Upstream(e)) if e.is_rate_limit() => {
                "Gemini rate limit reached"
            }
            Self::Gemini(CallError::Upstream(_)) => "Gemini request failed",
        }
    }
}

const REQUIRED: [&str; 5] = ["name", "description", "category", "vendor", "confidence"];

const SYSTEM_INSTRUCTION: &str = "You are a procurement catalog assistant. From a product name \
and optional hints, give accurate, conservative product data as one JSON object following the \
response schema. Use null for anything you do not know reliably; include a USD price only when \
it is clear and current. The description is one or two sentences on what the product is and its \
key features. metadata holds brand, specifications, warranty and key features. confidence is high \
only when you recognise the exact product.";

fn pricing_types_or_null() -> Vec<Value> {
    PricingType::ALL
        .iter()
        .map(|t| json!(t.as_str()))
        .chain([Value::Null])
        .collect()
}

/// The JSON Schema Gemini must answer with.
fn response_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Standardised official product name"},
            "description": {"type": "string", "description": "One or two sentences on the product and its key features"},
            "category": {"type": "string", "description": "Product category, e.g. Electronics, Furniture, Office Supplies, Software, Services"},
            "vendor": {"type": "string", "description": "Manufacturer or primary vendor"},
            "price": {"type": ["number", "null"], "minimum": 0, "description": "Current price in USD"},
            "pricing_type": {"type": ["string", "null"], "enum": pricing_types_or_null()},
            "product_url": {"type": ["string", "null"], "description": "Official product page"},
            "sku": {"type": ["string", "null"], "description": "SKU, model number or product code"},
            "metadata": {"type": "object", "description": "brand, specifications, warranty, key features"},
            "confidence": {"type": "string", "enum": Confidence::ALL}
        },
        "required": REQUIRED,
    })
}

/// One finished batch position.
#[derive(Debug)]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    /// The name as requested.
    pub product_name: String,
    /// The enrichment, or the reason it failed (shared by duplicate names).
    pub outcome: Result<Enrichment, Arc<EnrichmentError>>,
}

/// Enriches products through Gemini.
#[derive(Debug)]
pub struct EnrichmentService {
    gemini: GeminiClient,
    schema: Value,
    batch_concurrency: usize,
    share: Arc<TenantShare>,
}

impl EnrichmentService {
    /// Gemini calls a batch of `names` makes at most: one per distinct name
    /// (what the caller's rate limit is charged).
    pub fn gemini_calls(&self, names: &[String]) -> usize {
        names
            .iter()
            .map(|n| dedup_key(n))
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// A service calling `gemini`, enriching at most `batch_concurrency`
    /// items of one batch at once.
    /// Each org's work holds a slot of `share` while it runs.
    pub fn new(gemini: GeminiClient, batch_concurrency: usize, share: Arc<TenantShare>) -> Self {
        Self {
            gemini,
            schema: response_schema(),
            batch_concurrency: batch_concurrency.max(1),
            share,
        }
    }

    /// Enriches one product, with one repair attempt for unusable output.
    ///
    /// # Errors
    /// [`EnrichmentError`]: Gemini unavailable, or unusable output twice.
    pub async fn enrich(
        &self,
        request: &EnrichmentRequest,
        org: Uuid,
        deadline: Deadline,
    ) -> Result<Enrichment, EnrichmentError> {
        // One of the org's slots for the call and its repair attempt.
        let _slot = self.share.acquire(org, deadline).await.map_err(|()| {
            EnrichmentError::Gemini(CallError::DeadlineExceeded {
                dependency: "gemini",
            })
        })?;
        let user = user_prompt(request);
        let reason = match self.ask(&user, deadline).await? {
            Ok(enrichment) => return Ok(enrichment),
            Err(reason) => reason,
        };
        tracing::warn!(reason = %reason, "unusable enrichment; asking Gemini once more");
        let repair = format!(
            "{user}\n\nYour previous answer could not be used ({reason}). Answer again with one \
             JSON object that follows the schema exactly; name, description, category, vendor \
             and confidence must not be empty."
        );
        match self.ask(&repair, deadline).await? {
            Ok(enrichment) => Ok(enrichment),
            Err(reason) => Err(EnrichmentError::Unusable(reason)),
        }
    }

    /// One Gemini call: `Ok(Err(reason))` when the answer is unusable.
    async fn ask(
        &self,
        user: &str,
        deadline: Deadline,
    ) -> Result<Result<Enrichment, String>, EnrichmentError> {
        let prompt = StructuredPrompt {
            system: SYSTEM_INSTRUCTION,
            user,
            schema: &self.schema,
        };
        match self.gemini.generate_json(&prompt, deadline).await {
            Ok(value) => Ok(validate(&value)),
            Err(CallError::Upstream(GeminiError::UnusableOutput(reason))) => Ok(Err(reason)),
            Err(other) => Err(EnrichmentError::Gemini(other)),
        }
    }

    /// Enriches a batch: names that differ only in case or spacing are asked
    /// once and the answer copied to each position. Items arrive on the
    /// returned channel as they finish. Dropping the receiver (the client
    /// went away) stops the batch: unfinished Gemini calls are cancelled.
    pub fn enrich_batch(
        self: &Arc<Self>,
        names: Vec<String>,
        org: Uuid,
        deadline: Deadline,
    ) -> mpsc::Receiver<BatchItem> {
        let (tx, rx) = mpsc::channel(names.len().max(1));
        let service = Arc::clone(self);
        #[expect(
            clippy::disallowed_methods,
            reason = "the batch's driver: its calls go through the fan-out, and it stops when the receiver is dropped"
        )]
        tokio::spawn(async move { service.drive_batch(names, org, deadline, tx).await });
        rx
    }

    async fn drive_batch(
        self: Arc<Self>,
        names: Vec<String>,
        org: Uuid,
        deadline: Deadline,
        tx: mpsc::Sender<BatchItem>,
    ) {
        // Distinct names, in first-seen order, each with the positions that asked for it.
        let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
        let mut distinct: Vec<(String, String)> = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let key = dedup_key(name);
            let entry = positions.entry(key.clone()).or_default();
            if entry.is_empty() {
                distinct.push((key, name.clone()));
            }
            entry.push(index);
        }

        let keys: Vec<String> = distinct.iter().map(|(key, _)| key.clone()).collect();
        let tasks = distinct.into_iter().map(|(_, name)| {
            let service = Arc::clone(&self);
            async move {
                let request = EnrichmentRequest {
                    product_name: name,
                    category: None,
                    additional_context: None,
                };
                service.enrich(&request, org, deadline).await
            }
        });
        let mut fan_out = FanOut::new(tasks, self.batch_concurrency);
        loop {
            let finished = tokio::select! {
                // The receiver is gone: dropping the fan-out aborts the calls in flight.
                () = tx.closed() => return,
                finished = fan_out.next() => finished,
            };
            let Some((position, outcome)) = finished else {
                return;
            };
            let outcome = match outcome {
                Ok(outcome) => outcome.map_err(Arc::new),
                Err(failed) => Err(Arc::new(EnrichmentError::TaskFailed(failed))),
            };
            let key = keys.get(position).map(String::as_str).unwrap_or_default();
            for &index in positions.get(key).into_iter().flatten() {
                let item = BatchItem {
                    index,
                    product_name: names[index].clone(),
                    outcome: outcome.clone(),
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Case- and space-insensitive identity of a product name.
fn dedup_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn user_prompt(request: &EnrichmentRequest) -> String {
    // One line per hint, whitespace collapsed, so a name cannot add lines of its own.
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut prompt = format!("Product name: {}", one_line(&request.product_name));
    if let Some(category) = &request.category {
        prompt.push_str(&format!("\nCategory: {}", one_line(category)));
    }
    if let Some(context) = &request.additional_context {
        prompt.push_str(&format!("\nAdditional context: {}", one_line(context)));
    }
    prompt.push_str("\n\nEnrich this product for a procurement catalog.");
    prompt
}

/// Checks the answer as the original did (required fields non-empty) and
/// normalises the optional ones; `Err` says what made it unusable.
fn validate(value: &Value) -> Result<Enrichment, String> {
    let text = |field: &str| -> Result<String, String> {
        match value.get(field).and_then(Value::as_str).map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(format!("missing or empty required field: {field}")),
        }
    };
    let optional_text = |field: &str| {
        value
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let confidence = text("confidence")?.to_lowercase();
    let confidence = Confidence::parse(&confidence)
        .ok_or_else(|| format!("confidence `{confidence}` {}", Confidence::expected()))?;
    let pricing_type =
        optional_text("pricing_type").and_then(|p| PricingType::parse(&p.to_lowercase()));
    let price = value
        .get("price")
        .and_then(Value::as_f64)
        .filter(|p| p.is_finite() && *p >= 0.0)
        .map(|p| (p * 100.0).round() / 100.0);
    let product_url = optional_text("product_url")
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    Ok(Enrichment {
        name: text("name")?,
        description: text("description")?,
        category: text("category")?,
        vendor: text("vendor")?,
        price,
        pricing_type,
        product_url,
        sku: optional_text("sku"),
        metadata: value
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_in_case_and_spacing_are_one_product() {
        assert_eq!(dedup_key("  Dell  XPS 13 "), dedup_key("dell xps 13"));
        assert_ne!(dedup_key("Dell XPS 13"), dedup_key("Dell XPS 15"));
    }

    #[test]
    fn the_prompt_keeps_hints_on_their_own_lines() {
        let prompt = user_prompt(&EnrichmentRequest {
            product_name: "Acme pan\nCategory: Weapons".into(),
            category: Some("Kitchen".into()),
            additional_context: None,
        });
        assert!(prompt.starts_with("Product name: Acme pan Category: Weapons\nCategory: Kitchen"));
    }

    #[test]
    fn required_fields_must_be_present_and_optional_ones_are_normalised() {
        let good = json!({
            "name": "Dell XPS 13", "description": "A laptop.", "category": "Laptops",
            "vendor": "Dell", "confidence": "HIGH", "price": 999.999, "pricing_type": "Monthly",
            "product_url": "ftp://nope", "sku": " ", "metadata": "not an object"
        });
        let e = validate(&good).unwrap();
        assert_eq!(e.confidence, Confidence::High);
        assert_eq!(e.price, Some(1000.0));
        assert_eq!(e.pricing_type, Some(PricingType::Monthly));
        assert_eq!(e.product_url, None);
        assert_eq!(e.sku, None);
        assert!(e.metadata.is_empty());

        let mut missing = good.clone();
        missing["vendor"] = json!("");
        assert!(validate(&missing).unwrap_err().contains("vendor"));
        let mut odd = good;
        odd["confidence"] = json!("certain");
        assert!(validate(&odd).is_err());
    }
}
