//! Who is calling: Supabase access tokens verified locally, against the
//! project's asymmetric signing keys (cached from its JSON Web Key Set) and/or
//! its legacy HS256 secret, so no request costs a round trip to Supabase Auth
//! and an unauthenticated caller never reaches Gemini.

mod keys;
mod token;

pub use keys::{KeySetStatus, SigningKeys};
pub use token::{Claims, MAX_TOKEN_LEN, TokenError, TokenVerifier};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member's role in their organisation, as stored in `org_memberships.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Searches and requests items.
    Requester,
    /// Reviews requests and proposals.
    Reviewer,
    /// Manages the catalog.
    Admin,
}

/// An authenticated caller with an organisation.
#[derive(Debug, Clone)]
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
