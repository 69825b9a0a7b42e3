//! `POST /api/embeddings`: chunking, order, dimensions, limits.

use serde_json::{Value, json};

use crate::helpers::{create_tenant, spawn_app};

const EMBEDDINGS: &str = "/api/embeddings";

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[tokio::test]
async fn many_texts_are_embedded_in_chunks_of_100_in_input_order() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let texts: Vec<String> = (0..250)
        .map(|i| format!("Product {i} | Category: Office Supplies | item number {i}"))
        .collect();

    let response = app
        .post_json(
            EMBEDDINGS,
            Some(&tenant.requester.token),
            &json!({ "texts": texts, "task_type": "retrieval_query" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "gemini-embedding-001");
    assert_eq!(body["dimensions"], 768);
    let embeddings = body["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), texts.len());
    for (text, embedding) in texts.iter().zip(embeddings) {
        let got: Vec<f64> = embedding
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), 768);
        assert!((norm(&got) - 1.0).abs() < 1e-3, "not normalised");
        // The emulator's vector for this very text, normalised as we do.
        let expected: Vec<f64> = gemini_emulator::embed::embedding(text, 768)
            .into_iter()
            .map(f64::from)
            .collect();
        let cosine = got.iter().zip(&expected).map(|(a, b)| a * b).sum::<f64>() / norm(&expected);
        assert!(cosine > 0.999, "vector of another text (cosine {cosine})");
    }
    let stats = app.gemini.stats();
    assert_eq!(stats.calls_of("batchEmbedContents"), 3);
    assert_eq!(stats.embedded_texts, 250);
}

#[tokio::test]
async fn bad_embedding_requests_are_400_naming_the_field() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let token = Some(tenant.requester.token.as_str());
    let cases = [
        (json!({}), "texts is required"),
        (json!({ "texts": "one" }), "texts must be an array"),
        (json!({ "texts": [] }), "texts must not be empty"),
        (json!({ "texts": ["a", null] }), "texts[1] must be a string"),
        (
            json!({ "texts": ["x".repeat(8001)] }),
            "texts[0] must be at most 8000 characters",
        ),
        (
            json!({ "texts": vec!["a"; 1001] }),
            "at most 1000 texts per request",
        ),
        (
            json!({ "texts": ["a"], "task_type": "SUMMARIZE" }),
            "task_type must be one of",
        ),
        (
            json!({ "texts": ["a"], "task_type": 3 }),
            "task_type must be a string",
        ),
    ];
    for (body, message) in cases {
        let response = app.post_json(EMBEDDINGS, token, &body).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "BAD_REQUEST");
        let got = error["error"]["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{got} for {body}");
    }
    assert_eq!(app.gemini.stats().total_calls(), 0);
}
