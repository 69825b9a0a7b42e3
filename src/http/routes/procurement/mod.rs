//! The procurement workflow, as the original served it, one module per
//! resource: `requests`, `proposals`, `new_item` (request-new-item)
//! and `audit` (the audit log). Requests deserialize into each module's
//! types; the work is in `services::procurement`.

mod audit;
mod new_item;
mod proposals;
mod requests;

use axum::Router;

use crate::state::AppState;

/// Longest justification or review note accepted.
const MAX_NOTE_CHARS: usize = 5_000;

/// Routes of the workflow.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(requests::router())
        .merge(proposals::router())
        .merge(new_item::router())
        .merge(audit::router())
}

/// The workflow's part of the OpenAPI document.
pub struct Api;

impl utoipa::OpenApi for Api {
    fn openapi() -> utoipa::openapi::OpenApi {
        let mut doc = requests::Api::openapi();
        doc.merge(proposals::Api::openapi());
        doc.merge(new_item::Api::openapi());
        doc.merge(audit::Api::openapi());
        doc
    }
}

/// Reads an enumeration refusing other values with `$refuse` (a generic
/// `fn(&str) -> E`), in the original's words for that field.
macro_rules! worded_enum {
    ($(#[$meta:meta])* $name:ident($inner:ty), $refuse:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        struct $name($inner);

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                <$inner>::parse(&text)
                    .map(Self)
                    .ok_or_else(|| $refuse::<D::Error>(&text))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <$inner as utoipa::PartialSchema>::schema()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                <$inner as utoipa::ToSchema>::name()
            }
        }
    };
}
use worded_enum;
