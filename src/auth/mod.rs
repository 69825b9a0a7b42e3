//! Who is calling: Supabase access tokens verified locally, against the
//! project's asymmetric signing keys (cached from its JSON Web Key Set) and/or
//! its legacy HS256 secret, so no request costs a round trip to Supabase Auth
//! and an unauthenticated caller never reaches Gemini.

mod keys;
mod token;

pub use keys::{KeySetStatus, SigningKeys};
pub use token::{Claims, MAX_TOKEN_LEN, TokenError, TokenVerifier};

use uuid::Uuid;

use crate::domain::Role;

/// An authenticated caller with an organisation.
#[derive(Clone)]
pub struct Caller {
    /// The Supabase Auth user id (`sub`).
    pub user_id: Uuid,
    /// The caller's organisation.
    pub org_id: Uuid,
    /// The caller's role in it.
    pub role: Role,
    /// The caller's own access token, forwarded on user-scoped database
    /// calls so row-level security has the last word.
    pub access_token: String,
}

impl Caller {
    /// Whether the caller holds `role` (in their organisation).
    ///
    /// # Errors
    /// [`NotAllowed`] otherwise.
    pub fn require(&self, role: Role) -> Result<(), NotAllowed> {
        if self.role == role {
            Ok(())
        } else {
            Err(NotAllowed::role(role))
        }
    }

    /// Whether the caller holds one of `roles`.
    ///
    /// # Errors
    /// [`NotAllowed`] otherwise, naming them as the original did
    /// (`Requires role: reviewer, admin`).
    pub fn require_any(&self, roles: &'static [Role]) -> Result<(), NotAllowed> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(NotAllowed(Required::AnyOf(roles)))
        }
    }
}

/// The caller's role does not allow what they asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotAllowed(Required);

#[derive(Debug, Clone)]
enum Required {
    One(Role),
    AnyOf(&'static [Role]),
}

impl std::fmt::Display for Required {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::One(role) => write!(f, "{role} role required"),
            Self::AnyOf(roles) => {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                write!(f, "Requires role: {}", names.join(", "))
            }
        }
    }
}

impl NotAllowed {
    /// Refused for want of `role`.
    pub fn role(role: Role) -> Self {
        Self(Required::One(role))
    }
}

/// Never prints the access token: a `Caller` may end up in a log line.
impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user_id", &self.user_id)
            .field("org_id", &self.org_id)
            .field("role", &self.role)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let caller = Caller {
            user_id: Uuid::nil(),
            org_id: Uuid::nil(),
            role: Role::Admin,
            access_token: "eyJ.secret-token.sig".to_owned(),
        };
        let printed = format!("{caller:?}");
        assert!(!printed.contains("secret-token"), "{printed}");
        assert!(printed.contains("Admin"), "{printed}");
    }
}
