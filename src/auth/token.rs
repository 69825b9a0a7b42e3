//! Access-token verification with `jsonwebtoken` (RustCrypto backend).
//!
//! A token's header names its algorithm; that picks the key, never the
//! other way round:
//! - `ES256` / `RS256`: the project's signing key named by `kid`, whose own
//!   algorithm must be the header's (so a key cannot be used with another
//!   algorithm);
//! - `HS256`: the legacy JWT secret, when one is configured;
//! - anything else, `none` included: refused before any cryptography.
//!
//! The signature is checked before any claim is looked at (HMAC in constant
//! time), then `exp` and `nbf` with [`LEEWAY_SECONDS`] of clock skew, `aud`
//! (`authenticated`), `iss` when configured, and `sub` (a user id).
//!
//! A client sends the same token with every request for up to an hour, and
//! an ES256 check costs about 0.4 ms of CPU: a verified token is remembered
//! (by its SHA-256) until its `exp`, at most [`VERIFIED_TTL`], and reused
//! only while the key that verified it is still the project's key for its
//! `kid` (a rotated-out or refetched key means a fresh check).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use moka::future::Cache;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::keys::SigningKeys;
use crate::clients::jwks::VerifyingKey;
use crate::config::Secret;

/// Longest a verified token is reused without a fresh check.
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Verified tokens remembered at once (about 200 bytes each).
const VERIFIED_CAPACITY: u64 = 10_000;

/// Longest token accepted; real Supabase tokens are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;
/// The audience Supabase puts in user access tokens.
const AUDIENCE: &str = "authenticated";

/// Why a token was refused. The variants are for logs; clients only ever
/// see a generic 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts with JSON header and claims, or too long.
    #[error("malformed token")]
    Malformed,
    /// An algorithm we do not accept here (`none`, HS512, HS256 without a secret, ...).
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    /// No signing key with the token's `kid` (or no `kid` at all).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not match.
    #[error("bad signature")]
    Signature,
    /// `exp` is missing or in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` does not include `authenticated`.
    #[error("wrong audience")]
    Audience,
    /// `iss` is missing or not the project's Auth server.
    #[error("wrong issuer")]
    Issuer,
    /// `sub` is missing or not a UUID.
    #[error("subject is not a user id")]
    Subject,
}

/// The verified claims we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user's id (`sub`).
    pub user_id: Uuid,
}

/// Loosely typed on purpose: the library's own claim checks (`exp` among
/// them) run after this is decoded, and they name what is wrong better than
/// a decode error would.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: serde_json::Value,
    #[serde(default)]
    exp: serde_json::Value,
}

/// A token that passed every check, and what vouched for it.
#[derive(Clone)]
struct Verified {
    claims: Claims,
    /// `exp`, in seconds since 1970.
    expires_at: u64,
    /// The signing key that verified it; `None` for the legacy secret,
    /// which cannot change while the process runs.
    key: Option<Arc<VerifyingKey>>,
}

/// Verifies users' access tokens against the project's signing keys and/or
/// its legacy secret.
#[derive(Clone)]
pub struct TokenVerifier {
    legacy_secret: Option<DecodingKey>,
    signing_keys: Option<SigningKeys>,
    hs256: Validation,
    es256: Validation,
    rs256: Validation,
    verified: Cache<[u8; 32], Verified>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("legacy_secret", &self.legacy_secret.is_some())
            .field("signing_keys", &self.signing_keys)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for the legacy secret, the key set, or both; `issuer`, when
    /// given, is the `iss` every token must carry.
    pub fn new(
        legacy_secret: Option<&Secret>,
        signing_keys: Option<SigningKeys>,
        issuer: Option<&str>,
    ) -> Self {
        let validation = |algorithm| {
            let mut v = Validation::new(algorithm);
            v.leeway = LEEWAY_SECONDS;
            v.validate_nbf = true;
            v.set_audience(&[AUDIENCE]);
            let mut required = vec!["exp", "sub", "aud"];
            if let Some(issuer) = issuer {
                v.set_issuer(&[issuer]);
                required.push("iss");
            }
            v.set_required_spec_claims(&required);
            v
        };
        Self {
            legacy_secret: legacy_secret.map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            signing_keys,
            hs256: validation(Algorithm::HS256),
            es256: validation(Algorithm::ES256),
            rs256: validation(Algorithm::RS256),
            verified: Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
        }
    }

    /// The cached signing keys, when the key set is in use.
    pub fn signing_keys(&self) -> Option<&SigningKeys> {
        self.signing_keys.as_ref()
    }

    /// Whether any token could verify now: the legacy secret is set, or at
    /// least one signing key is held.
    pub fn can_verify(&self) -> bool {
        self.legacy_secret.is_some()
            || self
                .signing_keys
                .as_ref()
                .is_some_and(|keys| keys.status().keys > 0)
    }

    /// Checks `token` and returns its claims.
    ///
    /// # Errors
    /// [`TokenError`] naming the first check that failed.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.verified.get(&digest).await {
            if unix_now() < known.expires_at && self.still_vouched(token, known.key.as_ref()).await
            {
                return Ok(known.claims);
            }
            self.verified.invalidate(&digest).await;
        }
        let verified = self.check(token).await?;
        let claims = verified.claims.clone();
        self.verified.insert(digest, verified).await;
        Ok(claims)
    }

    /// Whether the key that verified `token` is still the one its `kid` names.
    async fn still_vouched(&self, token: &str, key: Option<&Arc<VerifyingKey>>) -> bool {
        let (Some(key), Some(keys)) = (key, self.signing_keys.as_ref()) else {
            return key.is_none();
        };
        let kid = decode_header(token).ok().and_then(|header| header.kid);
        match kid {
            Some(kid) => keys
                .find(&kid)
                .await
                .is_some_and(|now| Arc::ptr_eq(&now, key)),
            None => false,
        }
    }

    /// Every check, from the signature on.
    async fn check(&self, token: &str) -> Result<Verified, TokenError> {
        let header = decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName => TokenError::Algorithm("unsupported".to_owned()),
            _ => TokenError::Malformed,
        })?;
        let refused = || TokenError::Algorithm(format!("{:?}", header.alg));
        let signing_key;
        let mut vouching = None;
        let (key, validation) = match header.alg {
            Algorithm::HS256 => (
                self.legacy_secret.as_ref().ok_or_else(refused)?,
                &self.hs256,
            ),
            Algorithm::ES256 | Algorithm::RS256 => {
                let keys = self.signing_keys.as_ref().ok_or_else(refused)?;
                let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
                signing_key = keys.find(kid).await.ok_or(TokenError::UnknownKey)?;
                if signing_key.algorithm != header.alg {
                    return Err(refused());
                }
                let validation = if header.alg == Algorithm::ES256 {
                    &self.es256
                } else {
                    &self.rs256
                };
                vouching = Some(Arc::clone(&signing_key));
                (&signing_key.key, validation)
            }
            _ => return Err(refused()),
        };
        let data = decode::<RawClaims>(token, key, validation).map_err(|e| classify(e.kind()))?;
        let user_id = data
            .claims
            .sub
            .as_str()
            .and_then(|sub| Uuid::parse_str(sub).ok())
            .ok_or(TokenError::Subject)?;
        // `exp` was required and checked; a value we cannot read as seconds
        // is simply not remembered.
        let expires_at = data.claims.exp.as_u64().unwrap_or(0);
        Ok(Verified {
            claims: Claims { user_id },
            expires_at,
            key: vouching,
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn classify(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenError::Signature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidSubject => TokenError::Subject,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            match claim.as_str() {
                "exp" => TokenError::Expired,
                "nbf" => TokenError::NotYetValid,
                "aud" => TokenError::Audience,
                "iss" => TokenError::Issuer,
                "sub" => TokenError::Subject,
                _ => TokenError::Malformed,
            }
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::Algorithm("mismatch".to_owned())
        }
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    const SECRET: &str = "test-secret-with-enough-length-0123456789";
    const USER: &str = "6f1c1a2e-8a0b-4b1e-9a5e-0c1d2e3f4a5b";
    const ISSUER: &str = "https://project.supabase.co/auth/v1";

    fn sign(claims: &Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn verifier(issuer: Option<&str>) -> TokenVerifier {
        TokenVerifier::new(Some(&Secret::new(SECRET)), None, issuer)
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims() -> Value {
        json!({"sub": USER, "aud": "authenticated", "role": "authenticated", "exp": now() + 60, "iss": ISSUER})
    }

    fn with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut c = claims();
        change(c.as_object_mut().unwrap());
        c
    }

    #[tokio::test]
    async fn a_valid_token_yields_the_user() {
        let verified = verifier(Some(ISSUER))
            .verify(&sign(&claims(), SECRET))
            .await
            .unwrap();
        assert_eq!(verified.user_id.to_string(), USER);
    }

    #[tokio::test]
    async fn forged_expired_and_foreign_tokens_are_refused() {
        let cases = [
            (sign(&claims(), "another-secret"), TokenError::Signature),
            (
                sign(
                    &with(|c| _ = c.insert("exp".into(), json!(now() - 3600))),
                    SECRET,
                ),
                TokenError::Expired,
            ),
            (
                sign(&with(|c| _ = c.remove("exp")), SECRET),
                TokenError::Expired,
            ),
            (
                sign(&with(|c| _ = c.insert("exp".into(), json!(1e300))), SECRET),
                TokenError::Expired,
            ),
            (
                sign(
                    &with(|c| _ = c.insert("nbf".into(), json!(now() + 3600))),
                    SECRET,
                ),
                TokenError::NotYetValid,
            ),
            (
                sign(
                    &with(|c| _ = c.insert("aud".into(), json!("other"))),
                    SECRET,
                ),
                TokenError::Audience,
            ),
            (
                sign(
                    &with(|c| _ = c.insert("iss".into(), json!("https://evil/auth/v1"))),
                    SECRET,
                ),
                TokenError::Issuer,
            ),
            (
                sign(&with(|c| _ = c.remove("iss")), SECRET),
                TokenError::Issuer,
            ),
            (
                sign(
                    &with(|c| _ = c.insert("sub".into(), json!("service"))),
                    SECRET,
                ),
                TokenError::Subject,
            ),
            ("not-a-token".to_owned(), TokenError::Malformed),
            ("a.b.c.d".to_owned(), TokenError::Malformed),
            ("x".repeat(MAX_TOKEN_LEN + 1), TokenError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(
                verifier(Some(ISSUER)).verify(&token).await,
                Err(expected),
                "{token}"
            );
        }
    }

    #[tokio::test]
    async fn huge_times_neither_overflow_nor_pass() {
        let far = sign(
            &with(|c| _ = c.insert("exp".into(), json!(u64::MAX))),
            SECRET,
        );
        assert!(verifier(None).verify(&far).await.is_ok());
        let never = sign(
            &with(|c| _ = c.insert("nbf".into(), json!(u64::MAX))),
            SECRET,
        );
        assert_eq!(
            verifier(None).verify(&never).await,
            Err(TokenError::NotYetValid)
        );
    }

    #[tokio::test]
    async fn other_algorithms_and_none_are_refused() {
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            verifier(None).verify(&hs512).await,
            Err(TokenError::Algorithm(_))
        ));
        let p = URL_SAFE_NO_PAD.encode(claims().to_string());
        for alg in ["none", "None", "ES256"] {
            let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg}).to_string());
            for token in [format!("{h}.{p}."), format!("{h}.{p}")] {
                assert!(verifier(None).verify(&token).await.is_err(), "{token}");
            }
        }
    }

    #[tokio::test]
    async fn hs256_is_refused_without_a_secret() {
        let only_keys = TokenVerifier::new(None, None, None);
        assert!(!only_keys.can_verify());
        assert!(matches!(
            only_keys.verify(&sign(&claims(), SECRET)).await,
            Err(TokenError::Algorithm(_))
        ));
    }

    #[tokio::test]
    async fn audiences_may_be_a_list() {
        let token = sign(
            &with(|c| _ = c.insert("aud".into(), json!(["x", "authenticated"]))),
            SECRET,
        );
        assert!(verifier(None).verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn a_remembered_token_is_reused_until_its_exp_and_not_after() {
        let verifier = TokenVerifier::new(Some(&Secret::new(SECRET)), None, None);
        let now = unix_now();
        let token = sign(
            &json!({"sub": USER, "aud": "authenticated", "exp": now + 3600}),
            SECRET,
        );
        let claims = verifier.verify(&token).await.unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), claims);
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert!(verifier.verified.get(&digest).await.is_some(), "remembered");

        // An entry past its exp is not trusted: the token is checked again.
        let expired = sign(
            &json!({"sub": USER, "aud": "authenticated", "exp": now - 3600}),
            SECRET,
        );
        let digest: [u8; 32] = Sha256::digest(expired.as_bytes()).into();
        let stale = Verified {
            claims: claims.clone(),
            expires_at: now - 1,
            key: None,
        };
        verifier.verified.insert(digest, stale).await;
        assert_eq!(verifier.verify(&expired).await, Err(TokenError::Expired));
    }
}
