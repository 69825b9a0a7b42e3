//! Gemini's JSON shapes, private to the client. Field names follow the API's
//! camelCase; only the fields we read are declared, unknown ones are ignored.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::GeminiError;

#[derive(Debug, Deserialize)]
pub(super) struct ListModelsResponse {
    #[serde(default)]
    pub(super) models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Model {
    pub(super) name: String,
}

/// Google's error envelope: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// Decodes a 2xx body as `T`, or turns any other answer into a [`GeminiError`].
pub(super) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GeminiError> {
    let status = response.status();
    let body = response.bytes().await.map_err(GeminiError::transport)?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| GeminiError::Decode(format!("unexpected response body: {e}")));
    }
    Err(api_error(status.as_u16(), &body))
}

fn api_error(status: u16, body: &[u8]) -> GeminiError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(envelope) => {
            let details = &envelope.error.details;
            GeminiError::Api {
                status,
                google_status: envelope.error.status,
                message: envelope.error.message,
                retry_delay: details.iter().find_map(retry_delay),
                per_day_quota: details.iter().any(names_per_day_quota),
            }
        }
        Err(_) => GeminiError::Api {
            status,
            google_status: String::new(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            retry_delay: None,
            per_day_quota: false,
        },
    }
}

/// `RetryInfo.retryDelay`, a protobuf Duration string such as `"7s"` or `"34.4s"`.
fn retry_delay(detail: &serde_json::Value) -> Option<Duration> {
    if detail.get("@type")?.as_str()? != "type.googleapis.com/google.rpc.RetryInfo" {
        return None;
    }
    let seconds: f64 = detail
        .get("retryDelay")?
        .as_str()?
        .strip_suffix('s')?
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// A `QuotaFailure` whose violated quota is per day: waiting minutes will not help.
fn names_per_day_quota(detail: &serde_json::Value) -> bool {
    detail.get("@type").and_then(|t| t.as_str())
        == Some("type.googleapis.com/google.rpc.QuotaFailure")
        && detail
            .get("violations")
            .and_then(|v| v.as_array())
            .is_some_and(|violations| {
                violations.iter().any(|v| {
                    v.get("quotaId")
                        .and_then(|id| id.as_str())
                        .is_some_and(|id| id.contains("PerDay"))
                })
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_carries_its_retry_delay_and_quota_kind() {
        let body = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.5s"}]}}"#;
        match api_error(429, body) {
            GeminiError::Api {
                status,
                google_status,
                retry_delay,
                per_day_quota,
                ..
            } => {
                assert_eq!(status, 429);
                assert_eq!(google_status, "RESOURCE_EXHAUSTED");
                assert_eq!(retry_delay, Some(Duration::from_millis(34_500)));
                assert!(per_day_quota);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_non_json_error_body_is_kept_short() {
        let body = vec![b'x'; 10_000];
        match api_error(502, &body) {
            GeminiError::Api { message, .. } => assert_eq!(message.len(), 200),
            other => panic!("unexpected {other:?}"),
        }
    }
}
