//! `GET /`, `/api/health` and `/api/readiness` with real dependency checks.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{gemini_in_flight, poll_readiness, spawn_app, spawn_app_with};

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
    // The stack's database was ours from the start.
    assert_eq!(body["database_phase"], "contracted", "{body}");
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
async fn readiness_is_degraded_not_failed_when_gemini_rejects_the_key() {
    let app = spawn_app_with(|vars| {
        vars.insert("GEMINI_API_KEY".into(), "not-the-emulators-key".into());
    })
    .await;

    let response = app.get("/api/readiness").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"],
        json!({"database": true, "gemini_api": false})
    );
}

#[tokio::test]
async fn readiness_require_gemini_restores_the_originals_503() {
    let app = spawn_app_with(|vars| {
        vars.insert("GEMINI_API_KEY".into(), "not-the-emulators-key".into());
        vars.insert("READINESS_REQUIRE_GEMINI".into(), "true".into());
    })
    .await;

    let response = app.get("/api/readiness").await;

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(body.get("uptime_seconds").is_none(), "{body}");
}

#[tokio::test]
async fn readiness_goes_around_open_breakers_and_full_concurrency_limits() {
    use gemini_emulator::{Fault, FaultRule, Faults};
    let app = spawn_app_with(|vars| {
        vars.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "1".into());
        vars.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
        vars.insert("GEMINI_MAX_CONCURRENCY".into(), "1".into());
    })
    .await;
    let tenant = crate::helpers::create_tenant().await;
    // Gemini fails one enrichment: its breaker opens for traffic.
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    let response = app
        .post_json(
            "/api/products/enrich",
            Some(&tenant.admin.token),
            &json!({ "product_name": "Slack" }),
        )
        .await;
    assert_eq!(response.status(), 503);
    app.gemini.set_faults(Faults::default());
    // Gemini has recovered: the probe sees it, though the breaker is open.
    let body: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(body["circuit_breakers"]["gemini"], "open", "{body}");
    assert_eq!(body["checks"]["gemini_api"], true, "{body}");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn readiness_reports_gemini_false_but_stays_200_when_gemini_is_not_running() {
    // A port that was just free: nothing listens there, as when the emulator is stopped.
    let stopped = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = stopped.local_addr().unwrap();
    drop(stopped);
    let app = spawn_app_with(|vars| {
        vars.insert("GEMINI_BASE_URL".into(), format!("http://{address}"));
    })
    .await;

    let response = app.get("/api/readiness").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"],
        json!({"database": true, "gemini_api": false})
    );
}

/// A wrong, rotated or disabled service key is refused by Supabase's API
/// gateway (401 without PostgREST's `code`). That is our misconfiguration:
/// readiness says so, callers get 503 (never a 401 that blames their
/// token), nothing is retried and the shared breaker stays closed.
#[tokio::test]
async fn a_service_key_the_gateway_refuses_is_our_fault_not_the_callers() {
    let rotated = match crate::helpers::service_key_var() {
        "SUPABASE_SECRET_KEY" => "sb_secret_rotated_long_ago".to_owned(),
        _ => "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.forged".to_owned(),
    };
    let app = spawn_app_with(|vars| {
        vars.insert(crate::helpers::service_key_var().into(), rotated);
        vars.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "2".into());
    })
    .await;
    let tenant = crate::helpers::create_tenant().await;

    let response = app.get("/api/readiness").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["checks"]["database"], false, "{body}");
    assert!(body.get("database_phase").is_none(), "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("refused the service key"), "{body}");

    for _ in 0..4 {
        let response = app
            .get_as("/api/catalog/items", &tenant.requester.token)
            .await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    }
    // Four refusals with a breaker that opens after two failures: none counted.
    let body: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(body["circuit_breakers"]["database"], "closed", "{body}");
}

#[tokio::test]
async fn readiness_does_not_queue_behind_traffic_holding_every_gemini_slot() {
    use gemini_emulator::{Fault, FaultRule, Faults};
    let app = std::sync::Arc::new(
        spawn_app_with(|vars| {
            vars.insert("GEMINI_MAX_CONCURRENCY".into(), "1".into());
        })
        .await,
    );
    let tenant = crate::helpers::create_tenant().await;
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::Hang).for_methods(&["generateContent"]),
    ]));
    let hung = {
        let app = std::sync::Arc::clone(&app);
        let token = tenant.admin.token.clone();
        tokio::spawn(async move {
            app.post_json(
                "/api/products/enrich",
                Some(&token),
                &json!({ "product_name": "Slack" }),
            )
            .await
            .status()
        })
    };
    // The one slot is taken once the emulator has the hanging call.
    gemini_in_flight(&app.gemini, 1).await;
    let start = std::time::Instant::now();
    let body: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(body["checks"]["gemini_api"], true, "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    hung.abort();
}
