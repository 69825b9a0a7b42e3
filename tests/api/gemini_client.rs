//! The Gemini client against the emulator: structured output, embeddings and
//! how each kind of failure is classified. The policy here makes one attempt,
//! so each test sees Gemini's first answer.

use std::sync::Arc;
use std::time::Duration;

use catalogai::clients::gemini::{GeminiCallError, GeminiClient, GeminiError, StructuredPrompt};
use catalogai::config::Settings;
use catalogai::domain::TaskType;
use catalogai::resilience::{CallError, Deadline, Dependency};
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultRule, Faults, Quota};
use serde_json::{Value, json};

async fn client_with(faults: Faults, timeout_seconds: &str) -> (Emulator, GeminiClient) {
    let emulator = Emulator::start(EmulatorConfig {
        faults,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let settings = Settings::from_vars([
        ("SUPABASE_URL", "http://127.0.0.1:9"),
        ("SUPABASE_KEY", "anon"),
        ("SUPABASE_SERVICE_ROLE_KEY", "service"),
        ("SUPABASE_JWT_SECRET", "secret"),
        ("GEMINI_API_KEY", emulator.api_key()),
        ("GEMINI_BASE_URL", &emulator.base_url()),
        ("GEMINI_TIMEOUT_SECONDS", timeout_seconds),
        ("RETRY_MAX_ATTEMPTS", "1"),
        ("RETRY_RATE_LIMIT_ATTEMPTS", "1"),
    ])
    .unwrap();
    (emulator, client_for(&settings))
}

fn client_for(settings: &Settings) -> GeminiClient {
    let policy = Dependency::new(
        "gemini",
        &settings.resilience,
        settings.gemini.max_concurrency,
        settings.gemini.timeout,
    );
    GeminiClient::new(&settings.gemini, Arc::new(policy)).unwrap()
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// The upstream error inside a call error.
fn upstream(error: GeminiCallError) -> GeminiError {
    match error {
        CallError::Upstream(e) => e,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

async fn start_client(faults: Faults) -> (Emulator, GeminiClient) {
    client_with(faults, "30").await
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "vendor": {"type": "string"},
            "price": {"type": ["number", "null"]},
            "confidence": {"type": "string", "enum": ["high", "medium", "low"]}
        },
        "required": ["name", "vendor", "confidence"]
    })
}

async fn generate(client: &GeminiClient) -> Result<Value, GeminiError> {
    let schema = schema();
    client
        .generate_json(
            &StructuredPrompt {
                system: "You enrich product data.",
                user: "Product name: Logitech MX Master 3 mouse",
                schema: &schema,
            },
            deadline(),
        )
        .await
        .map_err(upstream)
}

fn only(fault: Fault) -> Faults {
    Faults::with_rules(vec![FaultRule::always(fault)])
}

#[tokio::test]
async fn structured_generation_returns_the_schema_fields() {
    let (emulator, client) = start_client(Faults::default()).await;
    let answer = generate(&client).await.unwrap();
    assert_eq!(answer["vendor"], "Logitech");
    assert_eq!(answer["confidence"], "high");
    assert_eq!(emulator.stats().calls_of("generateContent"), 1);
}

#[tokio::test]
async fn unusable_answers_are_their_own_kind_and_not_dependency_failures() {
    for fault in [
        Fault::MalformedJson,
        Fault::BlockedPrompt,
        Fault::MaxTokens,
        Fault::Safety,
    ] {
        let (_emulator, client) = start_client(only(fault.clone())).await;
        let error = generate(&client).await.unwrap_err();
        assert!(
            matches!(error, GeminiError::UnusableOutput(_)),
            "{fault:?}: {error:?}"
        );
        assert!(!error.is_retryable(), "{fault:?}");
        assert!(!error.is_dependency_failure(), "{fault:?}");
    }
}

#[tokio::test]
async fn api_errors_are_typed_with_their_retry_delay_and_quota_kind() {
    let (_e, client) = start_client(only(Fault::Error {
        status: 429,
        quota: Quota::PerMinute,
        retry_delay_seconds: Some(2.5),
    }))
    .await;
    let error = generate(&client).await.unwrap_err();
    assert!(
        matches!(
            error,
            GeminiError::RateLimited {
                quota: catalogai::clients::gemini::Quota::PerMinute,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.retry_delay(), Some(Duration::from_millis(2500)));
    assert!(error.is_retryable() && error.is_rate_limit());

    let (_e, client) = start_client(only(Fault::Error {
        status: 429,
        quota: Quota::PerDay,
        retry_delay_seconds: None,
    }))
    .await;
    let error = generate(&client).await.unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(matches!(
        error,
        GeminiError::RateLimited {
            quota: catalogai::clients::gemini::Quota::PerDay,
            ..
        }
    ));

    let (_e, client) = start_client(only(Fault::status(503))).await;
    let error = generate(&client).await.unwrap_err();
    assert!(matches!(
        error,
        GeminiError::Unavailable { status: 503, .. }
    ));
    assert!(error.is_retryable() && error.is_dependency_failure());
}

#[tokio::test]
async fn a_rejected_key_is_not_retryable() {
    let (emulator, _) = start_client(Faults::default()).await;
    let settings = Settings::from_vars([
        ("SUPABASE_URL", "http://127.0.0.1:9"),
        ("SUPABASE_KEY", "anon"),
        ("SUPABASE_SERVICE_ROLE_KEY", "service"),
        ("SUPABASE_JWT_SECRET", "secret"),
        ("GEMINI_API_KEY", "wrong-key"),
        ("GEMINI_BASE_URL", &emulator.base_url()),
    ])
    .unwrap();
    let client = client_for(&settings);
    let error = upstream(client.list_models(1, deadline()).await.unwrap_err());
    assert!(
        matches!(error, GeminiError::Refused { status: 400, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains("wrong-key"));
}

#[tokio::test]
async fn a_hanging_gemini_hits_the_timeout() {
    let (_e, client) = client_with(only(Fault::Hang), "1").await;
    let error = generate(&client).await.unwrap_err();
    assert!(
        matches!(
            error,
            GeminiError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn embeddings_come_back_in_order_normalised_at_the_configured_size() {
    let (emulator, client) = start_client(Faults::default()).await;
    let texts: Vec<String> = [
        "Acme non-stick frying pan",
        "Dell XPS laptop",
        "Acme frying pan lid",
    ]
    .map(String::from)
    .to_vec();

    let vectors = client
        .embed_batch(&texts, TaskType::RetrievalDocument, deadline())
        .await
        .unwrap();

    assert_eq!(vectors.len(), 3);
    for (text, vector) in texts.iter().zip(&vectors) {
        assert_eq!(vector.len(), 768);
        let norm: f32 = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        // Same direction as the emulator's vector for this very text: order kept.
        let expected = gemini_emulator::embed::embedding(text, 768);
        let dot: f32 = vector.iter().zip(&expected).map(|(a, b)| a * b).sum();
        let expected_norm: f32 = expected.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((dot / expected_norm - 1.0).abs() < 1e-4);
    }
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(cosine(&vectors[0], &vectors[2]) > cosine(&vectors[0], &vectors[1]));
    assert_eq!(emulator.stats().calls_of("batchEmbedContents"), 1);
}

#[tokio::test]
async fn more_than_a_hundred_texts_are_refused_before_calling_gemini() {
    let (emulator, client) = start_client(Faults::default()).await;
    let texts: Vec<String> = (0..101).map(|i| format!("item {i}")).collect();
    assert!(
        client
            .embed_batch(&texts, TaskType::RetrievalDocument, deadline())
            .await
            .is_err()
    );
    assert_eq!(emulator.stats().total_calls(), 0);
}
