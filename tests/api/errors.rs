//! The error envelope on every kind of failure, request ids, CORS and limits.

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn unknown_paths_answer_404_in_the_envelope() {
    let app = spawn_app().await;
    let (status, body) = error_of(app.get("/api/nothing-here").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn wrong_methods_answer_405_in_the_envelope_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(format!("{}/api/health", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    let (status, body) = error_of(response).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn oversized_bodies_answer_413_in_the_envelope() {
    let app = spawn_app_with(|vars| {
        vars.insert("MAX_BODY_BYTES".into(), "1024".into());
    })
    .await;
    let response = app
        .client
        .post(format!("{}/api/products/enrich", app.address))
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_request_past_its_deadline_answers_504() {
    let app = spawn_app_with(|vars| {
        vars.insert("REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let tenant = crate::helpers::create_tenant().await;
    // Gemini slower than the whole request may take.
    app.gemini.set_faults(gemini_emulator::Faults {
        latency_ms: 1_500,
        ..Default::default()
    });

    let start = std::time::Instant::now();
    let response = app
        .post_json(
            "/api/embeddings",
            Some(&tenant.requester.token),
            &serde_json::json!({ "texts": ["slow"] }),
        )
        .await;
    let (status, body) = error_of(response).await;

    assert_eq!(status, 504);
    assert_eq!(body["error"]["code"], "GATEWAY_TIMEOUT");
    assert!(start.elapsed() < std::time::Duration::from_millis(1_400));
}

#[tokio::test]
async fn the_callers_request_id_is_echoed() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/health", app.address))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
}

#[tokio::test]
async fn every_response_gets_a_request_id_and_unsafe_ones_are_replaced() {
    let app = spawn_app().await;
    let first = app.get("/api/nothing").await;
    let second = app.get("/api/nothing").await;
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!id(&first).is_empty());
    assert_ne!(id(&first), id(&second));

    let response = app
        .client
        .get(format!("{}/api/health", app.address))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    let replaced = id(&response);
    assert!(!replaced.is_empty() && replaced.len() <= 32, "{replaced}");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = spawn_app_with(|vars| {
        vars.insert("CORS_ORIGINS".into(), "https://app.example.com".into());
    })
    .await;
    let with_origin = |origin: &'static str| {
        app.client
            .get(format!("{}/api/health", app.address))
            .header("origin", origin)
            .send()
    };
    let allowed = with_origin("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = with_origin("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let server = app.get("/api/health").await;
    assert!(
        server.headers().get("vary").is_none(),
        "no CORS without Origin"
    );

    // A browser's preflight for an authenticated POST.
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/products/enrich", app.address),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let header = |name: &str| preflight.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(
        header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert!(header("access-control-allow-methods").contains("POST"));
    assert!(header("access-control-allow-headers").contains("authorization"));
}
