//! HS256 JWT verification for Supabase access tokens.
//!
//! Only `HS256` is accepted (so `alg: none` and algorithm confusion are
//! refused), the signature is checked in constant time, `exp` must be in the
//! future and `aud` must include `authenticated`. Written on `hmac` + `sha2`
//! rather than a JWT crate because HS256 is all Supabase's legacy JWT secret
//! signs, and the JWT crates' crypto backends bring RSA/ECDSA or a C build.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::config::Secret;

/// Longest token accepted; real Supabase tokens are well under 2 KiB.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: u64 = 30;
/// The audience Supabase puts in user access tokens.
const AUDIENCE: &str = "authenticated";

/// Why a token was refused. The variants are for logs; clients only ever
/// see a generic 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts with JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// An algorithm other than HS256 (including `none`).
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    /// The signature does not match.
    #[error("bad signature")]
    Signature,
    /// `exp` is missing or in the past.
    #[error("token expired")]
    Expired,
    /// `aud` does not include `authenticated`.
    #[error("wrong audience")]
    Audience,
    /// `sub` is missing or not a UUID.
    #[error("subject is not a user id")]
    Subject,
}

/// The verified claims we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user's id (`sub`).
    pub user_id: Uuid,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<u64>,
    aud: Option<Audience>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies tokens signed with the project's JWT secret.
#[derive(Clone)]
pub struct TokenVerifier {
    secret: Secret,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier")
    }
}

impl TokenVerifier {
    /// A verifier for `SUPABASE_JWT_SECRET`.
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// Checks `token` and returns its claims.
    ///
    /// # Errors
    /// [`TokenError`] naming the first check that failed.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(header)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm(header.alg.chars().take(16).collect()));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
            .map_err(|_| TokenError::Signature)?;
        mac.update(&token.as_bytes()[..header_and_payload_len(token)]);
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;

        let claims: RawClaims = decode_json(payload)?;
        match claims.exp {
            Some(exp) if exp + LEEWAY_SECONDS > now => {}
            _ => return Err(TokenError::Expired),
        }
        let audience_ok = match &claims.aud {
            Some(Audience::One(aud)) => aud == AUDIENCE,
            Some(Audience::Many(auds)) => auds.iter().any(|a| a == AUDIENCE),
            None => false,
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        let user_id = claims
            .sub
            .as_deref()
            .and_then(|sub| Uuid::parse_str(sub).ok())
            .ok_or(TokenError::Subject)?;
        Ok(Claims {
            user_id,
            expires_at: claims.exp.unwrap_or_default(),
        })
    }
}

/// Length of `header.payload`, the signed part.
fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "test-secret-with-enough-length-0123456789";
    const USER: &str = "6f1c1a2e-8a0b-4b1e-9a5e-0c1d2e3f4a5b";

    fn sign(header: &serde_json::Value, claims: &serde_json::Value, secret: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{h}.{p}.{s}")
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(Secret::new(SECRET))
    }

    fn claims(exp: u64) -> serde_json::Value {
        json!({"sub": USER, "aud": "authenticated", "role": "authenticated", "exp": exp})
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_valid_token_yields_the_user() {
        let token = sign(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &claims(NOW + 60),
            SECRET,
        );
        let verified = verifier().verify_at(&token, NOW).unwrap();
        assert_eq!(verified.user_id.to_string(), USER);
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let hs = json!({"alg": "HS256"});
        let cases = [
            (
                sign(&hs, &claims(NOW + 60), "another-secret"),
                TokenError::Signature,
            ),
            (sign(&hs, &claims(NOW - 3600), SECRET), TokenError::Expired),
            (
                sign(&hs, &json!({"sub": USER, "aud": "authenticated"}), SECRET),
                TokenError::Expired,
            ),
            (
                sign(
                    &hs,
                    &json!({"sub": USER, "aud": "other", "exp": NOW + 60}),
                    SECRET,
                ),
                TokenError::Audience,
            ),
            (
                sign(
                    &hs,
                    &json!({"sub": "service", "aud": "authenticated", "exp": NOW + 60}),
                    SECRET,
                ),
                TokenError::Subject,
            ),
            (
                sign(&json!({"alg": "HS512"}), &claims(NOW + 60), SECRET),
                TokenError::Algorithm("HS512".into()),
            ),
            ("not-a-token".to_owned(), TokenError::Malformed),
            ("a.b.c.d".to_owned(), TokenError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(verifier().verify_at(&token, NOW), Err(expected), "{token}");
        }
    }

    #[test]
    fn alg_none_is_refused_even_without_a_signature() {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
        let p = URL_SAFE_NO_PAD.encode(claims(NOW + 60).to_string());
        for token in [format!("{h}.{p}."), format!("{h}.{p}")] {
            assert!(verifier().verify_at(&token, NOW).is_err(), "{token}");
        }
    }

    #[test]
    fn audiences_may_be_a_list() {
        let token = sign(
            &json!({"alg": "HS256"}),
            &json!({"sub": USER, "aud": ["x", "authenticated"], "exp": NOW + 60}),
            SECRET,
        );
        assert!(verifier().verify_at(&token, NOW).is_ok());
    }
}
