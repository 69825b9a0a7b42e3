//! `GET /`, `/api/health` and `/api/readiness` with real dependency checks.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{poll_readiness, spawn_app, spawn_app_with};

#[tokio::test]
async fn root_describes_the_api() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name": "CatalogAI API", "version": "0.1.0", "status": "running"})
    );
}

#[tokio::test]
async fn health_answers_200_with_uptime_and_touches_no_dependency() {
    let app = spawn_app().await;
    app.rest.break_networking();

    let response = app.get("/api/health").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(body["uptime_seconds"].is_u64(), "{body}");
    assert_eq!(app.gemini.stats().calls_of("models.list"), 0);
}

#[tokio::test]
async fn readiness_is_200_when_database_and_gemini_answer() {
    let app = spawn_app().await;

    let response = app.get("/api/readiness").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"],
        json!({"database": true, "gemini_api": true})
    );
    assert!(body["uptime_seconds"].is_u64());
    // The Gemini check is a real call, not a look at the key.
    assert_eq!(app.gemini.stats().calls_of("models.list"), 1);
}

#[tokio::test]
async fn readiness_reuses_a_fresh_result_instead_of_calling_again() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/readiness").await.status(), 200);
    }
    assert_eq!(app.gemini.stats().calls_of("models.list"), 1);
}

#[tokio::test]
async fn readiness_turns_503_with_database_false_soon_after_the_rest_server_goes_away_and_recovers()
{
    let app = spawn_app().await;
    assert_eq!(app.get("/api/readiness").await.status(), 200);

    app.rest.break_networking();
    let (status, body, took) = poll_readiness(&app, 503, Duration::from_secs(5)).await;
    assert_eq!(status, 503, "still {body} after {took:?}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(
        body["checks"],
        json!({"database": false, "gemini_api": true})
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");

    app.rest.restore_networking();
    let (status, body, _) = poll_readiness(&app, 200, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "did not recover: {body}");
}

#[tokio::test]
async fn readiness_reports_gemini_false_when_gemini_rejects_the_key() {
    let app = spawn_app_with(|vars| {
        vars.insert("GEMINI_API_KEY".into(), "not-the-emulators-key".into());
    })
    .await;

    let response = app.get("/api/readiness").await;

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["checks"],
        json!({"database": true, "gemini_api": false})
    );
}

#[tokio::test]
async fn readiness_reports_gemini_false_when_gemini_is_not_running() {
    // A port that was just free: nothing listens there, as when the emulator is stopped.
    let stopped = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = stopped.local_addr().unwrap();
    drop(stopped);
    let app = spawn_app_with(|vars| {
        vars.insert("GEMINI_BASE_URL".into(), format!("http://{address}"));
    })
    .await;

    let response = app.get("/api/readiness").await;

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["checks"],
        json!({"database": true, "gemini_api": false})
    );
}

#[tokio::test]
async fn readiness_reports_database_false_when_the_service_key_is_forged() {
    let app = spawn_app_with(|vars| {
        vars.insert(
            "SUPABASE_SERVICE_ROLE_KEY".into(),
            "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.forged".into(),
        );
    })
    .await;

    let body: Value = app.get("/api/readiness").await.json().await.unwrap();

    assert_eq!(body["checks"]["database"], false);
}
