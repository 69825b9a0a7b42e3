//! Per-caller rate limiting: one caller's burst is cut off with 429 and
//! Retry-After, other callers and the probes are unaffected.

use serde_json::Value;

use crate::helpers::{TestApp, create_tenant, spawn_app_with};

async fn burst(app: &TestApp, path: &str, token: Option<&str>, n: usize) -> Vec<reqwest::Response> {
    let requests = (0..n).map(|_| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    });
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.expect("request failed"))
        .collect()
}

#[tokio::test]
async fn a_burst_of_1000_from_one_caller_is_limited_and_others_are_not() {
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "60".into());
        env.insert("RATE_LIMIT_BURST".into(), "10".into());
    })
    .await;
    let tenant = create_tenant().await;
    let start = std::time::Instant::now();

    let responses = burst(&app, "/api/auth/verify", Some(&tenant.admin.token), 1000).await;
    let elapsed = start.elapsed().as_secs();

    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 429).collect();
    assert_eq!(ok + limited.len(), 1000, "only 200 and 429 expected");
    // The burst, plus one token per second of the burst's own duration.
    assert!(
        ok >= 10 && ok as u64 <= 10 + elapsed + 1,
        "{ok} admitted in {elapsed} s"
    );
    let retry_after: u64 = limited[0].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");

    let first_limited = responses.into_iter().find(|r| r.status() == 429).unwrap();
    let body: Value = first_limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");

    // Another caller has a bucket of their own; the probes have none.
    let others = burst(&app, "/api/auth/verify", Some(&tenant.requester.token), 10).await;
    assert!(others.iter().all(|r| r.status() == 200));
    let probes = burst(&app, "/api/health", None, 200).await;
    assert!(probes.iter().all(|r| r.status() == 200));
}

#[tokio::test]
async fn rate_limiting_can_be_switched_off() {
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
        env.insert("RATE_LIMIT_BURST".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let responses = burst(&app, "/api/auth/verify", Some(&tenant.admin.token), 50).await;
    assert!(responses.iter().all(|r| r.status() == 200));
}

#[tokio::test]
async fn requests_pay_for_the_gemini_work_they_cause() {
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "6".into());
        env.insert("RATE_LIMIT_BURST".into(), "30".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.requester.token;
    let names: Vec<String> = (0..20).map(|i| format!("Costly thing {i}")).collect();

    // Twenty distinct names: twenty of the thirty tokens.
    assert_eq!(app.enrich_batch(token, &names).await.len(), 20);
    // Names that differ only in case and spacing are one Gemini call, one token.
    let same = ["Slack", "slack ", " SLACK"];
    assert_eq!(app.enrich_batch(token, &same).await.len(), 3);
    // Nine tokens left: another twenty names is refused before any Gemini call.
    let calls = app.gemini.stats().calls_of("generateContent");
    let response = app
        .post_json(
            "/api/products/enrich-batch",
            Some(token),
            &serde_json::json!({ "product_names": names }),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.gemini.stats().calls_of("generateContent"), calls);
    // 250 texts are three embedding calls: three tokens.
    let texts: Vec<String> = (0..250).map(|i| format!("text {i}")).collect();
    let response = app
        .post_json(
            "/api/embeddings",
            Some(token),
            &serde_json::json!({ "texts": texts }),
        )
        .await;
    assert_eq!(response.status(), 200);
}
