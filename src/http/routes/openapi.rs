//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every route.
//!
//! It is derived (utoipa) from the types the handlers read and serde writes,
//! and each route module contributes the `Api` beside its `router()`, so a
//! route and its description change together. Errors not listed on an
//! operation fall under its `default` answer: the envelope.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, Ref};

use crate::error::{ApiError, ErrorEnvelope};

use super::{auth, catalog, embeddings, health, products};

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

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

/// The whole document: every route module's part, the bearer scheme, and the
/// envelope as every operation's `default` answer.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Document::openapi();
    for part in [
        health::Api::openapi(),
        auth::Api::openapi(),
        products::Api::openapi(),
        embeddings::Api::openapi(),
        catalog::Api::openapi(),
    ] {
        doc.merge(part);
    }
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A Supabase access token (HS256, audience `authenticated`) of an organisation member",
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

/// Rendered once; the document is fixed for the life of the process.
static DOCUMENT_JSON: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    document()
        .to_json()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
});

/// This document.
#[utoipa::path(get, path = PATH, tag = "probes",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Result<Response, ApiError> {
    let json = DOCUMENT_JSON
        .as_ref()
        .map_err(|e| ApiError::Internal(format!("cannot render the OpenAPI document: {e}")))?;
    let mut response = json.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
