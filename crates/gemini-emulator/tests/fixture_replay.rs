//! Replays every request the official Google SDK sent (tests/fixtures) against
//! the emulator, with the fault each fixture depicts, and checks that every
//! answer has the fixture response's status and shape: the same keys with the
//! same JSON types, recursively, and number arrays (embeddings) of the same length.

use std::path::PathBuf;

use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultRule, Faults, Quota};
use serde_json::Value;

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// The fault a fixture shows, if any.
fn faults_for(fixture: &str) -> Faults {
    let rule = match fixture {
        "error_429_resource_exhausted" => FaultRule::always(Fault::Error {
            status: 429,
            quota: Quota::PerMinute,
            retry_delay_seconds: Some(7.0),
        }),
        "error_429_then_success_with_sdk_retry" => FaultRule::always(Fault::Error {
            status: 429,
            quota: Quota::PerMinute,
            retry_delay_seconds: Some(7.0),
        })
        .times(2),
        "error_503_unavailable" | "error_503_default_client" => FaultRule::always(Fault::Error {
            status: 503,
            quota: Quota::PerMinute,
            retry_delay_seconds: None,
        }),
        "generate_content_prompt_blocked" => FaultRule::always(Fault::BlockedPrompt),
        "generate_content_max_tokens_no_parts" => FaultRule::always(Fault::MaxTokens),
        _ => return Faults::default(),
    };
    Faults {
        rules: vec![rule],
        ..Faults::default()
    }
}

/// Keys whose presence depends on the data rather than the shape: a listing's
/// last page has no `nextPageToken`, and our catalogue is longer than the capture's.
const DATA_DEPENDENT_KEYS: &[&str] = &["nextPageToken"];

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn assert_same_shape(expected: &Value, actual: &Value, path: &str, problems: &mut Vec<String>) {
    if kind(expected) != kind(actual) {
        problems.push(format!(
            "{path}: expected {}, got {}",
            kind(expected),
            kind(actual)
        ));
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                match a.get(key) {
                    Some(other) => {
                        assert_same_shape(value, other, &format!("{path}.{key}"), problems);
                    }
                    None if DATA_DEPENDENT_KEYS.contains(&key.as_str()) => {}
                    None => problems.push(format!("{path}.{key}: missing")),
                }
            }
            for key in a.keys() {
                if !e.contains_key(key) && !DATA_DEPENDENT_KEYS.contains(&key.as_str()) {
                    problems.push(format!("{path}.{key}: not in the fixture"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            let numbers = e.iter().all(Value::is_number);
            if numbers && e.len() != a.len() {
                problems.push(format!("{path}: {} values, expected {}", a.len(), e.len()));
            }
            if e.len() == a.len() {
                for (i, (x, y)) in e.iter().zip(a).enumerate() {
                    assert_same_shape(x, y, &format!("{path}[{i}]"), problems);
                }
            } else if let (Some(x), Some(y)) = (e.first(), a.first()) {
                assert_same_shape(x, y, &format!("{path}[0]"), problems);
            } else if e.is_empty() != a.is_empty() {
                problems.push(format!(
                    "{path}: expected {} items, got {}",
                    e.len(),
                    a.len()
                ));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_fixture_request_gets_an_answer_shaped_like_the_fixture() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 16, "fixtures missing in {}", dir.display());

    let client = http_client();
    let mut problems = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let emulator = Emulator::start(EmulatorConfig {
            faults: faults_for(&name),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();

        for (i, exchange) in fixture["exchanges"].as_array().unwrap().iter().enumerate() {
            let request = &exchange["request"];
            let mut url = format!(
                "{}{}",
                emulator.base_url(),
                request["path"].as_str().unwrap()
            );
            let query: Vec<String> = request["query"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(k, vs)| {
                    vs.as_array()
                        .into_iter()
                        .flatten()
                        .map(move |v| format!("{k}={}", v.as_str().unwrap()))
                })
                .collect();
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let builder = match request["method"].as_str().unwrap() {
                "GET" => client.get(&url),
                _ => client.post(&url).json(&request["body"]),
            };
            let response = builder
                .header("x-goog-api-key", emulator.api_key())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert_eq!(
                response.headers()["content-type"],
                "application/json; charset=UTF-8",
                "{name}[{i}]"
            );
            let body: Value = response.json().await.unwrap();
            let expected = &exchange["response"];
            if u64::from(status) != expected["status"].as_u64().unwrap() {
                problems.push(format!(
                    "{name}[{i}]: status {status}, expected {}: {body}",
                    expected["status"]
                ));
                continue;
            }
            assert_same_shape(
                &expected["body"],
                &body,
                &format!("{name}[{i}]"),
                &mut problems,
            );
        }
    }
    assert!(
        problems.is_empty(),
        "shape differences:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn structured_output_is_valid_json_for_the_schema() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/generate_content_response_json_schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let request = &fixture["exchanges"][0]["request"];
    let body: Value = http_client()
        .post(format!(
            "{}{}",
            emulator.base_url(),
            request["path"].as_str().unwrap()
        ))
        .header("x-goog-api-key", emulator.api_key())
        .json(&request["body"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = body["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    let answer: Value = serde_json::from_str(text).unwrap();
    assert_eq!(answer["brand"], "Acme");
    assert_eq!(answer["category"], "Kitchen > Cookware");
    assert!(answer["description"].as_str().unwrap().contains("Acme"));
    assert!(
        answer["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
}
