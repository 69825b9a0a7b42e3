//! Client for the project's JSON Web Key Set (Supabase Auth's
//! `/auth/v1/.well-known/jwks.json`): the public halves of the asymmetric
//! keys that sign users' access tokens.
//!
//! Whoever controls this document decides who is who, so the fetch is
//! HTTPS-only (plain HTTP on loopback, checked with the settings), follows no
//! redirect to another host, reads at most [`MAX_BODY_BYTES`], and runs
//! through the resilience layer with its own timeout like every other
//! dependency. Only ES256 (P-256) and RS256 keys marked for signatures are
//! taken; anything else in the set is skipped, never guessed at, and a
//! symmetric (`oct`) key is never accepted from it.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::header::CACHE_CONTROL;
use reqwest::{Url, redirect};
use serde::Deserialize;

use crate::resilience::{CallError, Deadline, Dependency, Failure};

/// Largest key set read; real ones hold a handful of keys in about 1 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most redirects followed, all on the key set's own host.
const MAX_REDIRECTS: usize = 3;

/// A key-set fetch's failure after the resilience policy.
pub type JwksCallError = CallError<JwksError>;

/// One public key, ready to verify signatures.
pub struct VerifyingKey {
    /// The key id tokens name in their header.
    pub kid: String,
    /// The one algorithm this key verifies.
    pub algorithm: Algorithm,
    /// The key itself.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What one fetch produced.
#[derive(Debug)]
pub struct KeySet {
    /// The usable keys.
    pub keys: Vec<VerifyingKey>,
    /// How long the server said the set may be cached (`Cache-Control: max-age`).
    pub max_age: Option<Duration>,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// No answer: connection refused or reset, timeout.
    #[error("key set unreachable: {message}")]
    Transport {
        /// What the HTTP client reported.
        message: String,
        /// Whether the attempt timed out.
        timed_out: bool,
    },
    /// A non-2xx answer (a redirect off the host included).
    #[error("key set answered HTTP {0}")]
    Status(u16),
    /// A 2xx answer that is not a key set.
    #[error("key set is not usable: {0}")]
    Invalid(String),
}

impl Failure for JwksError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status(status) => *status == 429 || *status >= 500,
            Self::Invalid(_) => false,
        }
    }

    fn is_dependency_failure(&self) -> bool {
        self.is_retryable()
    }

    fn is_rate_limit(&self) -> bool {
        matches!(self, Self::Status(429))
    }

    fn timed_out(after: Duration) -> Self {
        Self::Transport {
            message: format!("no answer within {after:?}"),
            timed_out: true,
        }
    }
}

/// Fetches the key set; cheap to clone.
#[derive(Debug, Clone)]
pub struct JwksClient {
    http: reqwest::Client,
    url: Url,
    timeout: Duration,
    policy: Arc<Dependency>,
}

impl JwksClient {
    /// A client for the key set at `url`, each attempt bounded by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(url: Url, timeout: Duration, policy: Arc<Dependency>) -> Result<Self, JwksError> {
        let origin = url.clone();
        let same_host = redirect::Policy::custom(move |attempt| {
            let next = attempt.url();
            let stays = next.host_str() == origin.host_str()
                && next.port_or_known_default() == origin.port_or_known_default()
                && (next.scheme() == "https" || next.scheme() == origin.scheme());
            if stays && attempt.previous().len() <= MAX_REDIRECTS {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        #[expect(
            clippy::disallowed_methods,
            reason = "the key-set client follows same-host redirects only; the same timeouts as http_client"
        )]
        let http = reqwest::Client::builder()
            .user_agent(concat!("catalogai/", env!("CARGO_PKG_VERSION")))
            .redirect(same_host)
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| JwksError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            url,
            timeout,
            policy,
        })
    }

    /// Timeout of one attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where the key set is fetched from.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Fetches and parses the key set, retrying what can pass until `deadline`.
    ///
    /// # Errors
    /// [`JwksCallError`] when no attempt succeeded.
    pub async fn fetch(&self, deadline: Deadline) -> Result<KeySet, JwksCallError> {
        self.policy.call(deadline, || self.fetch_once()).await
    }

    async fn fetch_once(&self) -> Result<KeySet, JwksError> {
        let transport = |e: reqwest::Error| JwksError::Transport {
            message: e.to_string(),
            timed_out: e.is_timeout(),
        };
        let mut response = self
            .http
            .get(self.url.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(JwksError::Status(status.as_u16()));
        }
        let max_age = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body)?;
        Ok(KeySet { keys, max_age })
    }
}

fn too_large() -> JwksError {
    JwksError::Invalid(format!("larger than {MAX_BODY_BYTES} bytes"))
}

/// `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[derive(Deserialize)]
struct WireKeySet {
    keys: Vec<serde_json::Value>,
}

/// The usable keys of a JWKS document. Keys of other kinds are skipped one
/// by one (a set may gain kinds we do not verify), but a document that is
/// not a key set at all is an error.
fn parse_key_set(body: &[u8]) -> Result<Vec<VerifyingKey>, JwksError> {
    let set: WireKeySet = serde_json::from_slice(body)
        .map_err(|e| JwksError::Invalid(format!("not a JSON Web Key Set: {e}")))?;
    let mut keys = Vec::with_capacity(set.keys.len());
    for raw in set.keys {
        match verifying_key(raw) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::warn!(%reason, "skipping a key of the key set"),
        }
    }
    Ok(keys)
}

fn verifying_key(raw: serde_json::Value) -> Result<VerifyingKey, String> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("not a supported JWK: {e}"))?;
    let kid = jwk.common.key_id.clone().ok_or("no `kid`")?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err(format!("key {kid} is not for signatures"));
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (_, alg) => return Err(format!("key {kid}: {alg:?} keys are not accepted")),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("key {kid}: {e}"))?;
    Ok(VerifyingKey {
        kid,
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A P-256 public key (RFC 7515, appendix A.3).
    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"ec1","alg":"ES256","use":"sig",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn takes_signing_keys_and_skips_the_rest() {
        let body = format!(
            r#"{{"keys":[{EC},
                {{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}},
                {{"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"}},
                {{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},
                {{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},
                {{"kty":"OKP","crv":"X25519","kid":"future","x":"AA"}}]}}"#
        );
        let keys = parse_key_set(body.as_bytes()).unwrap();
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["ec1"]);
        assert_eq!(keys[0].algorithm, Algorithm::ES256);
    }

    #[test]
    fn a_document_that_is_not_a_key_set_is_an_error() {
        for body in ["", "[]", r#"{"keys":{}}"#, "<html>"] {
            assert!(parse_key_set(body.as_bytes()).is_err(), "{body}");
        }
        assert!(parse_key_set(br#"{"keys":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("Max-Age = 30"), Some(Duration::from_secs(30)));
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
