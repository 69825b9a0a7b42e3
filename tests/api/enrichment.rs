//! `POST /api/products/enrich` and `/api/products/enrich-batch` against the
//! Gemini emulator: shapes, validation, repair, fan-out, streaming.

use std::collections::BTreeSet;

use gemini_emulator::{Fault, FaultRule, Faults};
use serde_json::{Value, json};

use crate::helpers::{TestApp, create_tenant, gemini_in_flight, spawn_app, spawn_app_with};

const ENRICH: &str = "/api/products/enrich";
const BATCH: &str = "/api/products/enrich-batch";

fn assert_enrichment(value: &Value, requested: &str) {
    for field in ["name", "description", "category", "vendor"] {
        assert!(
            value[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {value}"
        );
    }
    assert!(["high", "medium", "low"].contains(&value["confidence"].as_str().unwrap()));
    assert!(value["metadata"].is_object());
    assert!(value.get("error").is_none(), "{value}");
    assert_eq!(
        value["name"].as_str().unwrap().to_lowercase(),
        requested.to_lowercase(),
        "answer for another product"
    );
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

#[tokio::test]
async fn enrich_returns_the_original_enrichment_shape() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;

    let response = app
        .post_json(
            ENRICH,
            Some(&tenant.requester.token),
            &json!({ "product_name": "Dell XPS 13", "category": "Laptops", "additional_context": "2024 model" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_enrichment(&body, "Dell XPS 13");
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "name",
        "description",
        "category",
        "vendor",
        "price",
        "pricing_type",
        "product_url",
        "sku",
        "metadata",
        "confidence",
    ]
    .into();
    assert_eq!(keys, expected);
    assert!(body["price"].is_null() || body["price"].as_f64().is_some_and(|p| p >= 0.0));
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 1);
}

#[tokio::test]
async fn bad_input_is_400_with_the_field_named_and_costs_no_gemini_call() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let token = Some(tenant.requester.token.as_str());
    let long = "x".repeat(501);

    let cases = [
        (json!({}), "product_name is required"),
        (json!({ "product_name": null }), "product_name is required"),
        (json!({ "product_name": "   " }), "product_name is required"),
        (
            json!({ "product_name": 42 }),
            "product_name must be a string",
        ),
        (
            json!({ "product_name": ["a"] }),
            "product_name must be a string",
        ),
        (
            json!({ "product_name": long }),
            "product_name must be at most 500 characters",
        ),
        (
            json!({ "product_name": "a", "category": 1 }),
            "category must be a string",
        ),
        (
            json!({ "product_name": "a", "additional_context": "y".repeat(2001) }),
            "additional_context must be at most 2000 characters",
        ),
        (
            json!(["product_name"]),
            "request body must be a JSON object",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = error_of(app.post_json(ENRICH, token, &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["code"], "BAD_REQUEST");
        assert_eq!(error["message"], message, "{body}");
    }

    let response = app
        .client
        .post(format!("{}{ENRICH}", app.address))
        .bearer_auth(&tenant.requester.token)
        .header("content-type", "application/json")
        .body("{\"product_name\": ")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("BAD_REQUEST")));

    let batch_cases = [
        (json!({}), "product_names is required"),
        (
            json!({ "product_names": "Slack" }),
            "product_names must be an array",
        ),
        (
            json!({ "product_names": [] }),
            "product_names must not be empty",
        ),
        (
            json!({ "product_names": ["ok", 7] }),
            "product_names[1] must be a string",
        ),
        (
            json!({ "product_names": ["ok", ""] }),
            "product_names[1] must not be empty",
        ),
        (
            json!({ "product_names": (0..21).map(|i| format!("p{i}")).collect::<Vec<_>>() }),
            "Maximum 20 products per batch",
        ),
    ];
    for (body, message) in batch_cases {
        let (status, error) = error_of(app.post_json(BATCH, token, &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["message"], message, "{body}");
    }

    assert_eq!(app.gemini.stats().total_calls(), 0);
}

#[tokio::test]
async fn unusable_output_is_repaired_once() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::MalformedJson).times(1),
    ]));

    let response = app
        .post_json(
            ENRICH,
            Some(&tenant.requester.token),
            &json!({ "product_name": "Slack" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_enrichment(&response.json().await.unwrap(), "Slack");
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 2);
}

#[tokio::test]
async fn output_unusable_twice_is_502_external_service_error() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    for fault in [Fault::MalformedJson, Fault::MaxTokens, Fault::BlockedPrompt] {
        app.gemini.reset();
        app.gemini
            .set_faults(Faults::with_rules(vec![FaultRule::always(fault.clone())]));
        let response = app
            .post_json(
                ENRICH,
                Some(&tenant.requester.token),
                &json!({ "product_name": "Slack" }),
            )
            .await;
        let (status, error) = error_of(response).await;
        assert_eq!(status, 502, "{fault:?}");
        assert_eq!(error["code"], "EXTERNAL_SERVICE_ERROR");
        assert_eq!(error["details"]["service"], "gemini");
        assert_eq!(
            app.gemini.stats().calls_of("generateContent"),
            2,
            "{fault:?}"
        );
    }
}

#[tokio::test]
async fn gemini_unavailable_is_503() {
    let app = spawn_app_with(|env| {
        env.insert("RETRY_MAX_ATTEMPTS".into(), "2".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    let response = app
        .post_json(
            ENRICH,
            Some(&tenant.requester.token),
            &json!({ "product_name": "Slack" }),
        )
        .await;
    let (status, error) = error_of(response).await;
    assert_eq!(status, 503);
    assert_eq!(error["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 2);
}

#[tokio::test]
async fn a_batch_answers_in_input_order_under_random_latency() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults {
        jitter_ms: 300,
        ..Faults::default()
    });
    let names: Vec<String> = (0..20).map(|i| format!("Widget {i}")).collect();

    let results = app.enrich_batch(&tenant.requester.token, &names).await;
    assert_eq!(results.len(), names.len());
    for (result, name) in results.iter().zip(&names) {
        assert_enrichment(result, name);
    }
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 20);
    assert!(
        app.gemini.stats().max_in_flight > 1,
        "the batch ran one at a time"
    );
}

#[tokio::test]
async fn duplicates_cost_one_gemini_call_each_and_fill_every_position() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let names = [
        "Slack",
        "slack",
        "  SLACK ",
        "Zoom",
        "zoom  ",
        "Dell   XPS 13",
        "dell xps 13",
    ];

    let results = app.enrich_batch(&tenant.requester.token, &names).await;
    assert_eq!(results.len(), names.len());
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 3);
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    assert_eq!(results[3], results[4]);
    assert_eq!(results[5], results[6]);
    assert_ne!(results[0], results[3]);
}

#[tokio::test]
async fn a_failed_item_has_the_original_error_shape_and_the_rest_succeed() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    // One call is refused with a 400 (never retried); which item it hits depends on scheduling.
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::status(400)).times(1),
    ]));
    let names: Vec<String> = (0..6).map(|i| format!("Gadget {i}")).collect();

    let results = app.enrich_batch(&tenant.requester.token, &names).await;
    let failed: Vec<(usize, &Value)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.get("error").is_some())
        .collect();
    assert_eq!(failed.len(), 1, "{results:?}");
    let (index, item) = failed[0];
    assert_eq!(
        *item,
        json!({
            "name": names[index], "description": "", "category": "", "vendor": "",
            "price": null, "pricing_type": null, "product_url": null, "sku": null,
            "metadata": {}, "confidence": "low", "error": "Gemini request failed",
        })
    );
    for (i, result) in results.iter().enumerate().filter(|(i, _)| *i != index) {
        assert_enrichment(result, &names[i]);
    }
    assert_eq!(app.gemini.stats().calls_of("generateContent"), 6);
}

/// `POST /api/products/enrich-batch` asking for the NDJSON stream.
async fn streamed_batch(
    app: &TestApp,
    token: &str,
    names: &[impl serde::Serialize],
) -> reqwest::Response {
    app.client
        .post(format!("{}{BATCH}", app.address))
        .bearer_auth(token)
        .header("accept", "application/x-ndjson")
        .json(&json!({ "product_names": names }))
        .send()
        .await
        .unwrap()
}

/// Reads an NDJSON body line by line.
async fn ndjson_lines(response: reqwest::Response) -> Vec<Value> {
    let text = response.text().await.unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test]
async fn a_streamed_batch_sends_every_item_with_its_index_then_a_summary() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults {
        jitter_ms: 200,
        rules: vec![FaultRule::always(Fault::MalformedJson).times(2)],
        ..Faults::default()
    });
    let names = ["Slack", "Zoom", "slack", "Dell XPS 13", "Notion"];

    let response = streamed_batch(&app, &tenant.requester.token, &names).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let lines = ndjson_lines(response).await;
    assert_eq!(lines.len(), names.len() + 1);
    let (items, summary) = lines.split_at(names.len());
    let indices: BTreeSet<u64> = items.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, (0..names.len() as u64).collect());
    let failed = items.iter().filter(|l| l.get("error").is_some()).count();
    for item in items.iter().filter(|l| l.get("error").is_none()) {
        let index = item["index"].as_u64().unwrap() as usize;
        let mut enrichment = item.clone();
        enrichment.as_object_mut().unwrap().remove("index");
        assert_enrichment(&enrichment, names[index]);
    }
    assert_eq!(
        summary[0],
        json!({ "summary": { "total": names.len(), "succeeded": names.len() - failed, "failed": failed } })
    );
}

#[tokio::test]
async fn a_client_that_disconnects_stops_its_batch() {
    let app = spawn_app_with(|env| {
        env.insert("BATCH_CONCURRENCY".into(), "2".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_latency_ms(300));
    let names: Vec<String> = (0..20).map(|i| format!("Gizmo {i}")).collect();

    let response = streamed_batch(&app, &tenant.requester.token, &names).await;
    let mut response = response;
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"index\""));
    drop(response);

    // The server notices the disconnect when it next writes, so calls
    // already running may finish. Then the count must stop growing: a batch
    // that kept going would start two calls every 300 ms until all 20 ran.
    let mut calls_after_disconnect = app.gemini.stats().calls_of("generateContent");
    for round in 0.. {
        // Bounded: a batch that never stopped would end the test here.
        assert!(round < 30, "calls kept starting after the disconnect");
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let stats = app.gemini.stats();
        let calls = stats.calls_of("generateContent");
        if calls == calls_after_disconnect && stats.in_flight == 0 {
            break;
        }
        calls_after_disconnect = calls;
    }
    let calls_later = calls_after_disconnect;
    assert!(calls_later < 20, "all {calls_later} calls were made");
}

#[tokio::test]
async fn a_streamed_batch_holds_its_in_flight_slot_and_its_deadline_to_the_last_line() {
    let app = spawn_app_with(|env| {
        env.insert("MAX_IN_FLIGHT_REQUESTS".into(), "1".into());
        env.insert("BATCH_CONCURRENCY".into(), "1".into());
        env.insert("REQUEST_TIMEOUT_SECONDS".into(), "3".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini.set_faults(Faults::with_latency_ms(400));
    let names: Vec<String> = (0..20).map(|i| format!("Slow gadget {i}")).collect();

    let started = std::time::Instant::now();
    let mut response = streamed_batch(&app, &tenant.requester.token, &names).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"index\""));

    // Headers are out, the stream goes on: the one slot is still taken.
    let shed = app.get_as("/api/auth/verify", &tenant.admin.token).await;
    assert_eq!(shed.status(), 503, "a streaming batch gave up its slot");
    assert!(shed.headers().contains_key("retry-after"));

    let mut rest = Vec::from(first.as_ref());
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(4),
        "stream ran {took:?} past its 3 s deadline"
    );
    let text = String::from_utf8(rest).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(
        last.get("summary").is_some(),
        "ended with a summary: {last}"
    );
    assert!(
        last["summary"]["failed"].as_u64().unwrap() > 0,
        "20 × 400 ms cannot fit in 3 s"
    );

    let after = app.get_as("/api/auth/verify", &tenant.admin.token).await;
    assert_eq!(
        after.status(),
        200,
        "the slot came back when the stream ended"
    );
}

/// One org flooding batches must not starve another's single enrichments:
/// each org holds at most half of `GEMINI_MAX_CONCURRENCY`.
#[tokio::test]
async fn an_org_flooding_batches_leaves_another_its_share_of_gemini() {
    let app = std::sync::Arc::new(
        spawn_app_with(|env| {
            env.insert("GEMINI_MAX_CONCURRENCY".into(), "4".into());
            env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
        })
        .await,
    );
    let flooder = create_tenant().await;
    let other = create_tenant().await;
    app.gemini.set_faults(Faults::with_latency_ms(300));

    let single = |app: std::sync::Arc<crate::helpers::TestApp>, token: String| async move {
        let started = std::time::Instant::now();
        let response = app
            .post_json(
                "/api/products/enrich",
                Some(&token),
                &json!({ "product_name": "Zoom" }),
            )
            .await;
        assert_eq!(response.status(), 200);
        started.elapsed()
    };
    let alone = single(std::sync::Arc::clone(&app), other.requester.token.clone()).await;

    let mut flood = tokio::task::JoinSet::new();
    for batch in 0..6 {
        let app = std::sync::Arc::clone(&app);
        let token = flooder.requester.token.clone();
        flood.spawn(async move {
            let names: Vec<String> = (0..10).map(|i| format!("Flood {batch}-{i}")).collect();
            app.enrich_batch(&token, &names).await
        });
    }
    gemini_in_flight(&app.gemini, 2).await;
    let mut flooded = Vec::new();
    for _ in 0..3 {
        flooded.push(single(std::sync::Arc::clone(&app), other.requester.token.clone()).await);
    }
    let worst = flooded.iter().max().copied().unwrap();
    // 60 flooding calls at 300 ms through 4 slots is 4.5 s of queue; the
    // other org's call must not wait in it.
    assert!(
        worst < alone * 2 + std::time::Duration::from_millis(300),
        "alone {alone:?}, while flooded {flooded:?}"
    );
    assert!(app.gemini.stats().max_in_flight <= 4);
    while let Some(done) = flood.join_next().await {
        assert_eq!(done.unwrap().len(), 10);
    }
}
