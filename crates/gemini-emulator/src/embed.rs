//! Embeddings: `embedContent` and `batchEmbedContents`.
//!
//! Vectors come from feature hashing of words and character trigrams into
//! 3072 dimensions, normalised to unit length, so texts that share words have
//! a higher cosine similarity than texts that do not. As with
//! `gemini-embedding-001`, a smaller `outputDimensionality` truncates the
//! 3072-d vector without re-normalising it, so only full-size vectors are unit
//! length.

use serde_json::{Value, json};

use crate::fill::fnv1a;
use crate::google_error::GoogleError;
use crate::wire::{BatchEmbedContentsRequest, EmbedContentRequest, parse_body};

/// The size of a full embedding.
pub const FULL_DIMENSION: usize = 3072;
/// The most entries one `batchEmbedContents` call may carry.
pub const MAX_BATCH: usize = 100;

const TASK_TYPES: &[&str] = &[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
];

/// The embedding of `text` with `dimensions` values (a truncated unit vector).
pub fn embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0f64; FULL_DIMENSION];
    let mut add = |feature: &str, weight: f64| {
        let hash = fnv1a(feature.as_bytes());
        let index = (hash % FULL_DIMENSION as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[index] += sign * weight;
    };
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        add(&format!("w:{word}"), 1.0);
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        for trigram in padded.windows(3) {
            add(&format!("t:{}", trigram.iter().collect::<String>()), 0.5);
        }
    }
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut truncated: Vec<f32> = vector
        .iter()
        .take(dimensions.min(FULL_DIMENSION))
        .map(|v| if norm > 0.0 { (v / norm) as f32 } else { 0.0 })
        .collect();
    // Gemini's truncated embeddings always keep a direction; a text whose few
    // features all hashed past the cut would otherwise come back all zeros.
    if !truncated.is_empty() && truncated.iter().all(|v| *v == 0.0) {
        let index = (fnv1a(lower.as_bytes()) % truncated.len() as u64) as usize;
        truncated[index] = 1.0;
    }
    truncated
}

/// `POST .../models/{model}:embedContent` → `{"embedding": {"values": [...]}}`.
pub(crate) fn embed_content(body: &Value) -> Result<(Value, usize), GoogleError> {
    let request: EmbedContentRequest = parse_body(body)?;
    let values = embed_entry(&request, "")?;
    Ok((json!({ "embedding": { "values": values } }), 1))
}

/// `POST .../models/{model}:batchEmbedContents` → `{"embeddings": [{"values"}, ...]}`, in order.
pub(crate) fn batch_embed_contents(
    model: &str,
    body: &Value,
) -> Result<(Value, usize), GoogleError> {
    let request: BatchEmbedContentsRequest = parse_body(body)?;
    if request.requests.is_empty() {
        return Err(GoogleError::invalid_argument(
            "requests",
            "* BatchEmbedContentsRequest.requests: must not be empty",
        ));
    }
    if request.requests.len() > MAX_BATCH {
        return Err(GoogleError::invalid_argument(
            "requests",
            format!(
                "* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch"
            ),
        ));
    }
    let expected = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(request.requests.len());
    for (i, entry) in request.requests.iter().enumerate() {
        let field = format!("requests[{i}]");
        if entry.model.as_deref() != Some(expected.as_str()) {
            return Err(GoogleError::invalid_argument(
                &format!("{field}.model"),
                format!(
                    "* BatchEmbedContentsRequest.{field}.model: unexpected model name format or \
                     model differs from the batch's model; expected \"{expected}\""
                ),
            ));
        }
        embeddings.push(json!({ "values": embed_entry(entry, &field)? }));
    }
    let count = embeddings.len();
    Ok((json!({ "embeddings": embeddings }), count))
}

fn embed_entry(entry: &EmbedContentRequest, field: &str) -> Result<Vec<f32>, GoogleError> {
    let at = |name: &str| {
        if field.is_empty() {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        }
    };
    if let Some(task_type) = &entry.task_type {
        if !TASK_TYPES.contains(&task_type.as_str()) {
            return Err(GoogleError::invalid_argument(
                &at("task_type"),
                format!(
                    "Invalid value at '{}' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), \"{task_type}\"",
                    at("task_type")
                ),
            ));
        }
    }
    let dimensions = match entry.output_dimensionality {
        None => FULL_DIMENSION,
        Some(d) if (128..=FULL_DIMENSION as i64).contains(&d) => d as usize,
        Some(d) => {
            return Err(GoogleError::invalid_argument(
                &at("output_dimensionality"),
                format!(
                    "* {}: output_dimensionality must be between 128 and {FULL_DIMENSION}, got {d}",
                    at("output_dimensionality")
                ),
            ));
        }
    };
    // All parts of one content become one vector, as Gemini does.
    let text = entry.content.text();
    if text.trim().is_empty() {
        return Err(GoogleError::invalid_argument(
            &at("content.parts"),
            format!("* {}: text content is empty", at("content.parts")),
        ));
    }
    Ok(embedding(&text, dimensions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    }

    #[test]
    fn full_vectors_are_unit_length_and_truncated_ones_are_not() {
        let full = embedding("Acme frying pan", FULL_DIMENSION);
        let norm: f32 = full.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let short = embedding("Acme frying pan", 768);
        assert_eq!(short.len(), 768);
        let norm: f32 = short.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(norm < 0.95, "{norm}");
        assert_eq!(&full[..768], &short[..]);
    }

    #[test]
    fn texts_that_share_words_are_closer() {
        let pan = embedding("Acme non-stick frying pan 28cm", 768);
        let similar = embedding("non-stick frying pan", 768);
        let other = embedding("Dell XPS laptop", 768);
        assert!(cosine(&pan, &similar) > cosine(&pan, &other) + 0.2);
    }

    #[test]
    fn the_same_text_always_gives_the_same_vector() {
        assert_eq!(
            embedding("Logitech mouse", 256),
            embedding("Logitech mouse", 256)
        );
    }
}
