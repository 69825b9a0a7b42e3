//! Retries, breakers, concurrency limits and deadlines, end to end: the
//! emulator's fault injection for Gemini, a broken proxy for the REST server.

use std::time::{Duration, Instant};

use gemini_emulator::{Fault, FaultRule, Faults, Quota};
use serde_json::{Value, json};

use crate::helpers::{TestApp, create_tenant, poll_readiness, spawn_app_with};

const ENRICH: &str = "/api/products/enrich";
const BATCH: &str = "/api/products/enrich-batch";

fn gemini_error(status: u16, quota: Quota, retry_delay_seconds: Option<f64>) -> Fault {
    Fault::Error {
        status,
        quota,
        retry_delay_seconds,
    }
}

async fn enrich(
    app: &TestApp,
    token: &str,
    name: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = app
        .post_json(ENRICH, Some(token), &json!({ "product_name": name }))
        .await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

#[tokio::test]
async fn a_batch_of_50_succeeds_when_30_percent_of_gemini_calls_fail_with_503() {
    // Default settings: an item is retried while its deadline leaves room
    // and the retry budget allows (30% failures need about 0.43 retries per
    // call, within the 50% budget), so none is lost to an attempt count.
    let app = spawn_app_with(|env| {
        env.insert("MAX_BATCH_SIZE".into(), "50".into());
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::status(503)).at_rate(0.3),
    ]));
    let names: Vec<String> = (0..50).map(|i| format!("Flaky product {i}")).collect();

    let results = app.enrich_batch(&tenant.requester.token, &names).await;
    assert_eq!(results.len(), 50);
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let calls = app.gemini.stats().calls_of("generateContent");
    // 3 calls in 10 fail, so 50 successes need about 50 / 0.7 = 72 calls.
    assert!(calls > 50, "nothing was retried ({calls} calls)");
    eprintln!(
        "30% 503: 50 items took {calls} generateContent calls ({} retries)",
        calls - 50
    );
}

#[tokio::test]
async fn a_retry_storm_adds_at_most_the_budgets_share_of_calls() {
    // 60% of calls fail: retrying each up to its cap would roughly double
    // Gemini's load; the budget holds retries to half the first attempts.
    // The breaker is kept out of it (it would cut the storm in its own way).
    let app = std::sync::Arc::new(
        spawn_app_with(|env| {
            env.insert("MAX_BATCH_SIZE".into(), "50".into());
            env.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "1000".into());
            env.insert("RETRY_BUDGET_MIN_PER_SECOND".into(), "0".into());
            env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
        })
        .await,
    );
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::status(503)).at_rate(0.6),
    ]));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..4 {
        let app = std::sync::Arc::clone(&app);
        let token = tenant.requester.token.clone();
        clients.spawn(async move {
            let names: Vec<String> = (0..50).map(|i| format!("Storm {client}-{i}")).collect();
            app.enrich_batch(&token, &names).await
        });
    }
    let mut failed = 0;
    while let Some(results) = clients.join_next().await {
        failed += results
            .unwrap()
            .iter()
            .filter(|r| r.get("error").is_some())
            .count();
    }
    let calls = app.gemini.stats().calls_of("generateContent");
    let first_attempts = 200;
    eprintln!(
        "60% 503 storm: {calls} calls for {first_attempts} items, {failed} items failed fast"
    );
    assert!(
        calls as f64 <= 1.5 * first_attempts as f64 + 1.0,
        "{calls} calls: retries exceeded half of the first attempts"
    );
    assert!(
        failed > 0,
        "nothing failed at 60% failures with a 50% budget"
    );
}

#[tokio::test]
async fn with_gemini_down_calls_stop_at_the_breaker_threshold_plus_the_budget_floor() {
    // One item at a time, so the count is the retry policy's and not how
    // many first attempts were already in flight when the breaker opened.
    let app = spawn_app_with(|env| {
        env.insert("MAX_BATCH_SIZE".into(), "50".into());
        env.insert("BATCH_CONCURRENCY".into(), "1".into());
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    let names: Vec<String> = (0..50).map(|i| format!("Down {i}")).collect();
    let results = app.enrich_batch(&tenant.requester.token, &names).await;
    assert!(results.iter().all(|r| r.get("error").is_some()));
    let calls = app.gemini.stats().calls_of("generateContent");
    // The breaker opens after 5 consecutive failures; then every call fails
    // fast. The budget's floor (5 a second) could add no more than that.
    assert!(calls <= 5 + 5, "{calls} calls to a Gemini that is down");
}

#[tokio::test]
async fn a_per_minute_429_is_retried_after_its_retry_delay() {
    let app = spawn_app_with(|_| {}).await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(gemini_error(429, Quota::PerMinute, Some(2.0))).times(1),
    ]));

    let start = Instant::now();
    let (status, body, _) = enrich(&app, &tenant.requester.token, "Slack").await;
    let took = start.elapsed();

    assert_eq!(status, 200, "{body}");
    assert!(took >= Duration::from_secs(2), "retried after {took:?}");
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 2);
}

#[tokio::test]
async fn a_per_day_429_is_not_retried() {
    let app = spawn_app_with(|_| {}).await;
    let tenant = create_tenant().await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(gemini_error(
            429,
            Quota::PerDay,
            Some(2.0),
        ))]));

    let (status, body, _) = enrich(&app, &tenant.requester.token, "Slack").await;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 1);
}

#[tokio::test]
async fn the_gemini_breaker_opens_fails_fast_and_closes_after_one_good_trial() {
    let app = spawn_app_with(|env| {
        env.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "3".into());
        env.insert("CIRCUIT_BREAKER_TIMEOUT".into(), "1".into());
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.requester.token;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            500,
        ))]));

    for _ in 0..3 {
        let (status, _, _) = enrich(&app, token, "Slack").await;
        assert_eq!(status, 503);
    }
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 3);

    // Open: answered at once, without reaching Gemini.
    app.gemini.reset();
    let mut retry_after = 0;
    for _ in 0..9 {
        let (status, body, headers) = enrich(&app, token, "Slack").await;
        assert_eq!(status, 503);
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
        retry_after = headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert!((1..=1).contains(&retry_after), "Retry-After {retry_after}");
    }
    // How fast the refusal is: scripts/bench retries (figure 10).
    assert_eq!(app.gemini.stats().total_calls(), 0);
    let readiness: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(readiness["circuit_breakers"]["gemini"], "open");

    // After the cool-down, Gemini has recovered: one trial call closes the breaker.
    app.gemini.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, body, _) = enrich(&app, token, "Slack").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 1);
    let readiness: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(readiness["circuit_breakers"]["gemini"], "closed");
}

#[tokio::test]
async fn a_hanging_gemini_hits_the_attempt_timeout_and_the_request_deadline_holds() {
    let app = spawn_app_with(|env| {
        env.insert("GEMINI_TIMEOUT_SECONDS".into(), "1".into());
        env.insert("REQUEST_TIMEOUT_SECONDS".into(), "3".into());
        env.insert("RETRY_MAX_ATTEMPTS".into(), "5".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::Hang)]));

    let start = Instant::now();
    let (status, body, _) = enrich(&app, &tenant.requester.token, "Slack").await;
    let took = start.elapsed();

    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "GATEWAY_TIMEOUT");
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    let attempts = app.gemini.stats().calls_of("generateContent");
    // 1 s attempts in a 3 s budget: more than one attempt, fewer than allowed.
    assert!((2..5).contains(&attempts), "{attempts} attempts");
    eprintln!("hanging Gemini: 504 after {took:?}, {attempts} attempts of 1 s");
}

#[tokio::test]
async fn concurrent_batches_never_exceed_the_global_gemini_limit() {
    let app = spawn_app_with(|env| {
        env.insert("GEMINI_MAX_CONCURRENCY".into(), "4".into());
        env.insert("BATCH_CONCURRENCY".into(), "20".into());
        // One org may take every slot here: this is about the global limit
        // (fair shares have their own test), and 80 names are 80 tokens.
        env.insert("GEMINI_TENANT_SHARE_PERCENT".into(), "100".into());
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_latency_ms(50));

    let batches = (0..4).map(|b| {
        let names: Vec<String> = (0..20).map(|i| format!("Batch {b} item {i}")).collect();
        let app = &app;
        let token = tenant.requester.token.clone();
        async move {
            app.post_json(BATCH, Some(&token), &json!({ "product_names": names }))
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    let bodies = futures_util::future::join_all(batches).await;

    for body in &bodies {
        let results = body["results"].as_array().unwrap();
        assert!(results.iter().all(|r| r.get("error").is_none()), "{body}");
    }
    let stats = app.gemini.stats();
    assert_eq!(stats.calls_of("generateContent"), 80);
    assert_eq!(stats.max_in_flight, 4, "high-water mark");
}

#[tokio::test]
async fn an_unreachable_rest_server_opens_the_database_breaker_and_the_service_recovers() {
    let app = spawn_app_with(|env| {
        env.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "2".into());
        env.insert("CIRCUIT_BREAKER_TIMEOUT".into(), "1".into());
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;

    app.rest.break_networking();
    for _ in 0..2 {
        let response = app.get_as("/api/auth/verify", token).await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "DATABASE_ERROR");
    }
    let response = app.get_as("/api/auth/verify", token).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");

    let response = app.get("/api/readiness").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["database"], false);
    assert_eq!(body["circuit_breakers"]["database"], "open");
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 0);

    // The REST server is back: no restart, no operator. Readiness sees the
    // database itself (its probe goes around the breaker), and after the
    // cool-down the next request is the trial that closes the breaker.
    app.rest.restore_networking();
    let (status, body, took) = poll_readiness(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "still {body} after {took:?}");
    assert_eq!(body["checks"]["database"], true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.get_as("/api/auth/verify", token).await;
    assert_eq!(response.status(), 200);
    let body: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(body["circuit_breakers"]["database"], "closed", "{body}");
}
