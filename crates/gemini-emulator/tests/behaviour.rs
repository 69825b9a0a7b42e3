//! The emulator's rules and faults, over HTTP, as a Gemini client sees them.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed call must fail the test"
)]

use std::time::Duration;

use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultRule, Faults, Quota};
use serde_json::{Value, json};

struct Client {
    emulator: Emulator,
    http: reqwest::Client,
}

impl Client {
    async fn start(faults: Faults) -> Self {
        let emulator = Emulator::start(EmulatorConfig {
            faults,
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        Self {
            emulator,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.emulator.base_url()))
            .header("x-goog-api-key", self.emulator.api_key())
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn entry(text: &str) -> Value {
    json!({
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": text}]},
        "taskType": "RETRIEVAL_DOCUMENT",
        "outputDimensionality": 768
    })
}

fn prompt(name: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": format!("Product name: {name}")}]}]})
}

const EMBED: &str = "/v1beta/models/gemini-embedding-001:batchEmbedContents";
const GENERATE: &str = "/v1beta/models/gemini-3-flash-preview:generateContent";

#[tokio::test]
async fn a_missing_key_is_403_and_a_wrong_key_400_and_the_key_query_works() {
    let c = Client::start(Faults::default()).await;
    let url = format!("{}/v1beta/models", c.emulator.base_url());

    let missing = c.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

    let wrong = c
        .http
        .get(&url)
        .header("x-goog-api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let by_query = c
        .http
        .get(format!("{url}?key={}", c.emulator.api_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    // Rejected keys never count as calls.
    assert_eq!(c.emulator.stats().calls_of("models.list"), 1);
}

#[tokio::test]
async fn both_api_versions_answer() {
    let c = Client::start(Faults::default()).await;
    for version in ["v1", "v1beta"] {
        let (status, body) = c
            .post(
                &format!("/{version}/models/gemini-embedding-001:batchEmbedContents"),
                &json!({"requests": [entry("pan")]}),
            )
            .await;
        assert_eq!(status, 200, "{version}: {body}");
    }
    let (status, _) = c
        .post(
            "/v2/models/gemini-embedding-001:batchEmbedContents",
            &json!({"requests": [entry("pan")]}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_fields_are_400_in_camel_or_snake_case_requests() {
    let c = Client::start(Faults::default()).await;
    let (status, body) = c
        .post(GENERATE, &json!({"contents": [{"parts": [{"text": "x"}]}], "generation_config": {"response_mime_type": "text/plain"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .post(GENERATE, &json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseFormat": "json"}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name \"responseFormat\""),
        "{body}"
    );
}

#[tokio::test]
async fn batch_rules_match_gemini() {
    let c = Client::start(Faults::default()).await;

    let too_many: Vec<Value> = (0..101).map(|i| entry(&format!("item {i}"))).collect();
    let (status, body) = c.post(EMBED, &json!({"requests": too_many})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100 requests")
    );

    let mut bare = entry("pan");
    bare["model"] = json!("gemini-embedding-001");
    assert_eq!(c.post(EMBED, &json!({"requests": [bare]})).await.0, 400);

    let mut other = entry("pan");
    other["model"] = json!("models/gemini-embedding-2");
    assert_eq!(c.post(EMBED, &json!({"requests": [other]})).await.0, 400);

    for dims in [127, 3073] {
        let mut e = entry("pan");
        e["outputDimensionality"] = json!(dims);
        assert_eq!(
            c.post(EMBED, &json!({"requests": [e]})).await.0,
            400,
            "{dims}"
        );
    }

    let hundred: Vec<Value> = (0..100).map(|i| entry(&format!("item {i}"))).collect();
    let (status, body) = c.post(EMBED, &json!({"requests": hundred})).await;
    assert_eq!(status, 200);
    assert_eq!(body["embeddings"].as_array().unwrap().len(), 100);
    assert_eq!(c.emulator.stats().embedded_texts, 100);
}

#[tokio::test]
async fn a_generation_model_cannot_embed_and_unknown_models_are_404() {
    let c = Client::start(Faults::default()).await;
    let (status, _) = c
        .post(
            "/v1beta/models/gemini-3-flash-preview:batchEmbedContents",
            &json!({"requests": [entry("x")]}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = c
        .post(
            "/v1beta/models/gemini-1.5-flash:generateContent",
            &prompt("x"),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn injected_429s_name_their_quota_and_retry_delay() {
    let c = Client::start(Faults {
        rules: vec![
            FaultRule::always(Fault::Error {
                status: 429,
                quota: Quota::PerDay,
                retry_delay_seconds: Some(2.0),
            })
            .times(1),
        ],
        ..Faults::default()
    })
    .await;
    let (status, body) = c.post(GENERATE, &prompt("Dell laptop")).await;
    assert_eq!(status, 429);
    let details = body["error"]["details"].as_array().unwrap();
    let quota = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .unwrap();
    assert!(
        quota["violations"][0]["quotaId"]
            .as_str()
            .unwrap()
            .contains("PerDay")
    );
    let retry = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    assert_eq!(retry["retryDelay"], "2s");
    // Only the next call was scripted to fail.
    assert_eq!(c.post(GENERATE, &prompt("Dell laptop")).await.0, 200);
}

#[tokio::test]
async fn a_requests_per_minute_quota_answers_429_past_it() {
    let c = Client::start(Faults {
        rpm_limit: Some(3),
        ..Faults::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(c.post(GENERATE, &prompt("Acme pan")).await.0, 200);
    }
    let (status, body) = c.post(GENERATE, &prompt("Acme pan")).await;
    assert_eq!(status, 429);
    let text = body.to_string();
    assert!(text.contains("PerMinute"), "{text}");
    assert!(text.contains("retryDelay"), "{text}");
}

#[tokio::test]
async fn a_hanging_emulator_never_answers() {
    let c = Client::start(Faults {
        rules: vec![FaultRule::always(Fault::Hang)],
        ..Faults::default()
    })
    .await;
    let result = c
        .http
        .post(format!("{}{GENERATE}", c.emulator.base_url()))
        .header("x-goog-api-key", c.emulator.api_key())
        .json(&prompt("x"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
}

#[tokio::test]
async fn content_faults_shape_the_answer() {
    let c = Client::start(Faults::default()).await;
    let structured = json!({
        "contents": [{"parts": [{"text": "Product name: Logitech MX Master 3 mouse"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
            "type": "object", "properties": {"vendor": {"type": "string"}}, "required": ["vendor"]}}
    });
    let text_of = |body: &Value| {
        body["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .map(str::to_owned)
    };

    let (_, ok) = c.post(GENERATE, &structured).await;
    let parsed: Value = serde_json::from_str(&text_of(&ok).unwrap()).unwrap();
    assert_eq!(parsed["vendor"], "Logitech");
    assert_eq!(ok["candidates"][0]["finishReason"], "STOP");
    assert!(ok["responseId"].is_string());
    assert_eq!(ok["modelVersion"], "gemini-3-flash-preview");

    let set = |fault| {
        c.emulator.set_faults(Faults {
            rules: vec![FaultRule::always(fault)],
            ..Faults::default()
        });
    };
    set(Fault::MalformedJson);
    let (_, bad) = c.post(GENERATE, &structured).await;
    assert!(serde_json::from_str::<Value>(&text_of(&bad).unwrap()).is_err());

    set(Fault::BlockedPrompt);
    let (status, blocked) = c.post(GENERATE, &structured).await;
    assert_eq!(status, 200);
    assert_eq!(blocked["promptFeedback"]["blockReason"], "SAFETY");
    assert!(blocked.get("candidates").is_none());

    set(Fault::MaxTokens);
    let (_, truncated) = c.post(GENERATE, &structured).await;
    assert_eq!(truncated["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert!(truncated["candidates"][0]["content"].get("parts").is_none());

    set(Fault::Safety);
    let (_, unsafe_answer) = c.post(GENERATE, &structured).await;
    assert_eq!(unsafe_answer["candidates"][0]["finishReason"], "SAFETY");
    assert!(text_of(&unsafe_answer).is_none());
}

#[tokio::test]
async fn a_rate_fails_that_share_of_calls() {
    let c = Client::start(Faults {
        rules: vec![
            FaultRule::always(Fault::Error {
                status: 503,
                quota: Quota::PerMinute,
                retry_delay_seconds: None,
            })
            .at_rate(0.3),
        ],
        ..Faults::default()
    })
    .await;
    let mut failures = 0;
    for _ in 0..20 {
        if c.post(GENERATE, &prompt("x")).await.0 == 503 {
            failures += 1;
        }
    }
    assert_eq!(failures, 6);
}

#[tokio::test]
async fn counters_track_calls_and_the_concurrency_high_water_mark() {
    let c = Client::start(Faults {
        latency_ms: 200,
        ..Faults::default()
    })
    .await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..5 {
        let request = c
            .http
            .post(format!("{}{GENERATE}", c.emulator.base_url()))
            .header("x-goog-api-key", c.emulator.api_key())
            .json(&prompt(&format!("item {i}")));
        calls.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    assert!(calls.join_all().await.iter().all(|s| *s == 200));
    let stats = c.emulator.stats();
    assert_eq!(stats.calls_of("generateContent"), 5);
    assert_eq!(stats.max_in_flight, 5);
    assert_eq!(stats.in_flight, 0);

    c.emulator.reset();
    assert_eq!(c.emulator.stats().total_calls(), 0);
    assert_eq!(c.emulator.stats().max_in_flight, 0);
}

#[tokio::test]
async fn the_admin_api_sets_faults_and_reads_stats_over_http() {
    let c = Client::start(Faults::default()).await;
    let admin = |path: &str| format!("{}/_emulator/{path}", c.emulator.base_url());
    let response = c
        .http
        .put(admin("faults"))
        .json(&json!({"rules": [{"kind": "error", "status": 500, "remaining": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(c.post(GENERATE, &prompt("x")).await.0, 500);
    assert_eq!(c.post(GENERATE, &prompt("x")).await.0, 200);

    let stats: Value = c
        .http
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["calls"]["generateContent"], 2);
    let reset: Value = c
        .http
        .post(admin("reset"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["calls"], json!({}));

    let bad = c
        .http
        .put(admin("faults"))
        .json(&json!({"latency": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}
