//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every route.
//!
//! It is derived (utoipa) from the types the handlers read and serde writes,
//! and each route module contributes the `Api` beside its `router()`, so a
//! route and its description change together. Errors not listed on an
//! operation fall under its `default` answer: the envelope. Every
//! operation but the probes takes the bearer token (its handler reads a
//! `Caller`), so that is said here once rather than on each route.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, Ref};

use crate::config::BatchSettings;
use crate::error::ErrorEnvelope;
use crate::state::AppState;

use super::{auth, catalog, embeddings, health, imports, procurement, products};

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// The tag of the routes anyone may call: the load balancer's and the
/// orchestrator's probes, and this document.
const PROBES: &str = "probes";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CatalogAI API",
        description = "Product names in, an AI-enriched and semantically searchable catalog out. \
            Authenticated routes take a Supabase access token as `Authorization: Bearer`."
    ),
    paths(openapi_json),
    components(schemas(ErrorEnvelope))
)]
struct Document;

/// The whole document: every route module's part, the bearer scheme (asked
/// of every operation but the probes), and the envelope as every
/// operation's `default` answer.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Document::openapi();
    for part in [
        health::Api::openapi(),
        auth::Api::openapi(),
        products::Api::openapi(),
        embeddings::Api::openapi(),
        catalog::Api::openapi(),
        imports::Api::openapi(),
        procurement::Api::openapi(),
    ] {
        doc.merge(part);
    }
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A Supabase access token (ES256 or RS256 from the project's signing keys, or \
             legacy HS256; audience `authenticated`) of an organisation member",
        ))
        .build();
    doc.components
        .get_or_insert_with(Components::new)
        .add_security_scheme("bearer", SecurityScheme::Http(bearer));
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if !operation
                .tags
                .as_ref()
                .is_some_and(|tags| tags.iter().any(|tag| tag == PROBES))
            {
                operation.security =
                    Some(vec![SecurityRequirement::new::<_, _, &str>("bearer", [])]);
            }
            add_error_default(operation);
        }
    }
    doc
}

fn add_error_default(operation: &mut Operation) {
    let envelope = ResponseBuilder::new()
        .description(
            "Any other error, as `{\"error\": {\"code\", \"message\", \"details\"?}}`: 400 \
             BAD_REQUEST for invalid input, 401 UNAUTHORIZED, 404, 405, 413 PAYLOAD_TOO_LARGE, \
             415 UNSUPPORTED_MEDIA_TYPE, 429 RATE_LIMIT_EXCEEDED and 503 SERVICE_UNAVAILABLE \
             (both with Retry-After), 500 INTERNAL_ERROR.",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build();
    operation
        .responses
        .responses
        .entry("default".to_owned())
        .or_insert_with(|| envelope.into());
}

/// The document as served: [`document`] with the list sizes this process
/// accepts, which are settings, written into the request schemas.
///
/// # Errors
/// When the document cannot be rendered (a bug).
pub fn render(batch: &BatchSettings) -> Result<Arc<[u8]>, serde_json::Error> {
    let mut doc = serde_json::to_value(document())?;
    limit_items(
        &mut doc,
        "BatchRequest",
        "product_names",
        batch.max_batch_size,
    );
    limit_items(
        &mut doc,
        "EmbeddingsRequest",
        "texts",
        batch.max_embed_texts,
    );
    require_by_proposal_type(&mut doc);
    serde_json::to_vec(&doc).map(Arc::from)
}

/// What each proposal type requires beyond the fields every proposal may
/// carry (checked by `insert_proposal` in the database): a name for adding
/// and replacing, the item for replacing and deprecating.
fn require_by_proposal_type(doc: &mut Value) {
    let Some(schema) = doc.pointer_mut("/components/schemas/NewProposalBody") else {
        return;
    };
    let name = serde_json::json!({"$ref": "#/components/schemas/Text255"});
    let item = serde_json::json!({"$ref": "#/components/schemas/Id"});
    let branch = |kind: &str, required: &[&str]| {
        let mut properties = serde_json::Map::new();
        properties.insert("proposal_type".into(), serde_json::json!({"enum": [kind]}));
        for field in required {
            let value = if *field == "item_name" { &name } else { &item };
            properties.insert((*field).to_owned(), value.clone());
        }
        serde_json::json!({"properties": properties, "required": required})
    };
    schema["oneOf"] = serde_json::json!([
        branch("ADD_ITEM", &["item_name"]),
        branch("REPLACE_ITEM", &["item_name", "replacing_item_id"]),
        branch("DEPRECATE_ITEM", &["replacing_item_id"]),
    ]);
}

/// Gives `schema.field` (a list, by reference) its own copy of the list
/// schema with `maxItems`.
fn limit_items(doc: &mut Value, schema: &str, field: &str, max: usize) {
    let property = format!("/components/schemas/{schema}/properties/{field}");
    let Some(list) = doc
        .pointer(&property)
        .and_then(|p| p.get("$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|target| doc.pointer(target))
        .cloned()
    else {
        return;
    };
    if let Some(slot) = doc.pointer_mut(&property) {
        let mut list = list;
        list["maxItems"] = Value::from(max);
        *slot = list;
    }
}

/// This document.
#[utoipa::path(get, path = PATH, tag = "probes",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let body = Bytes::from_owner(Arc::clone(&state.openapi));
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
