//! Hostile input on every endpoint: malformed and mistyped JSON, odd text,
//! bad ids and query strings, oversized bodies, wrong content types, bad
//! tokens, and a seeded generator of random bodies. Every answer must be a
//! 4xx in the error envelope (or a success, when random input happens to be
//! valid): never a 5xx, never a panic, never a hung connection.

use std::sync::LazyLock;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, create_tenant, mint_token, sign_token, spawn_app_with, unix_now, user_token,
};
use crate::schema::OpenApiDocument;

/// Every authenticated operation of the OpenAPI document, its path ids
/// filled with ids no row has: a route added to the server is probed here
/// without anyone listing it.
fn endpoints() -> Vec<(Method, String)> {
    let mut endpoints = Vec::new();
    for (path, operations) in DOCUMENT.doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let secured = operation["security"]
                .as_array()
                .is_some_and(|schemes| !schemes.is_empty());
            if secured {
                endpoints.push((method, with_ids(path)));
            }
        }
    }
    assert!(endpoints.len() >= 20, "only {endpoints:?}");
    endpoints
}

/// `path` with each `{param}` replaced by a fresh id.
fn with_ids(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                Uuid::new_v4().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Sends a request and checks the answer is not a server error and, when an
/// error, is in the envelope. Returns the status.
async fn probe(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> u16 {
    let mut request = app
        .client
        .request(method.clone(), format!("{}{path}", app.address))
        .timeout(Duration::from_secs(20));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    let response = request
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} {shown}: no answer: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(
        status < 500,
        "{method} {path} with {shown:?}: {status} {text}"
    );
    if status >= 400 {
        let envelope: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        let documented = json!({"$ref": "#/components/schemas/ErrorEnvelope"});
        if let Err(e) = DOCUMENT.validate(&envelope, &documented) {
            panic!("{method} {path}: {status} is not the documented envelope: {e}");
        }
    }
    status
}

/// The OpenAPI document, for the envelope's schema.
static DOCUMENT: LazyLock<OpenApiDocument> = LazyLock::new(|| OpenApiDocument {
    doc: serde_json::to_value(catalogai::http::routes::openapi::document()).unwrap(),
});

fn app_settings(env: &mut std::collections::HashMap<String, String>) {
    env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    env.insert("MAX_BODY_BYTES".into(), "65536".into());
    env.insert("IMPORT_MAX_BYTES".into(), "65536".into());
}

/// The media type `method path` takes its body in, as the document says
/// (`application/json` but for import files).
fn body_media_type(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let (_, operations) = DOCUMENT.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| part.starts_with('{') || part == segment)
        })
        .unwrap_or_else(|| panic!("{path} is not in the document"));
    let content = &operations[method.as_str().to_ascii_lowercase()]["requestBody"]["content"];
    content
        .as_object()
        .and_then(|types| types.keys().next().cloned())
        .unwrap_or_else(|| "application/json".to_owned())
}

#[tokio::test]
async fn malformed_bodies_are_4xx_on_every_endpoint() {
    let app = spawn_app_with(app_settings).await;
    let tenant = create_tenant().await;
    let token = Some(tenant.admin.token.as_str());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"123".to_vec(),
        b"{\"product_name\": \"a\",}".to_vec(),
        b"{\"product_name\": \"\xff\xfe\"}".to_vec(),
        vec![0xff, 0x00, 0x7b],
        deep.into_bytes(),
        format!("{{\"product_name\": \"{}\"}}", "x".repeat(100_000)).into_bytes(),
    ];
    for (method, path) in endpoints() {
        for body in &bodies {
            probe(
                &app,
                method.clone(),
                &path,
                token,
                Some("application/json"),
                body.clone(),
            )
            .await;
        }
        // The repair endpoint reads no body, so no body can be wrong for it.
        if method == Method::POST && !path.ends_with("/check") {
            let status = probe(
                &app,
                method.clone(),
                &path,
                token,
                Some("text/plain"),
                b"{}".to_vec(),
            )
            .await;
            assert!(status == 415 || status == 403, "{path}: {status}");
            let status = probe(&app, method.clone(), &path, token, None, b"{}".to_vec()).await;
            assert!(status == 415 || status == 403, "{path}: {status}");
            // Over the limit in the route's own media type.
            let media_type = body_media_type(&method, &path);
            let status = probe(
                &app,
                method.clone(),
                &path,
                token,
                Some(&media_type),
                vec![b' '; 70_000],
            )
            .await;
            assert!(
                status == 413 || status == 403,
                "{path} ({media_type}): {status}"
            );
        }
    }
}

#[tokio::test]
async fn bad_tokens_are_401_and_unknown_users_403_on_every_endpoint() {
    let app = spawn_app_with(app_settings).await;
    let tenant = create_tenant().await;
    let now = unix_now();
    let user = tenant.admin.id;
    let claims =
        json!({ "sub": user, "aud": "authenticated", "role": "authenticated", "exp": now + 600 });
    let none_header = json!({ "alg": "none", "typ": "JWT" });
    let unsigned = {
        let signed = sign_token(&none_header, &claims, "x");
        let (head_and_payload, _) = signed.rsplit_once('.').unwrap();
        format!("{head_and_payload}.")
    };
    let bad: Vec<(&str, String)> = vec![
        ("malformed", "a.b".into()),
        ("garbage", "\u{1F600}\u{202E}".into()),
        (
            "forged",
            sign_token(
                &json!({ "alg": "HS256", "typ": "JWT" }),
                &claims,
                "wrong-secret",
            ),
        ),
        (
            "expired",
            mint_token(&json!({ "sub": user, "aud": "authenticated", "exp": now - 3600 })),
        ),
        ("alg none", unsigned),
        ("huge", "e".repeat(20_000)),
    ];
    for (method, path) in endpoints() {
        let status = probe(
            &app,
            method.clone(),
            &path,
            None,
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 401, "{path} without a token");
        for (case, token) in &bad {
            let status = probe(
                &app,
                method.clone(),
                &path,
                Some(token),
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
            // Header values must be visible ASCII; reqwest refuses others before sending, so
            // those cases never leave the client and are covered by "malformed".
            assert!(status == 401 || status == 400, "{path} {case}: {status}");
        }
        let stranger = user_token(Uuid::new_v4());
        let status = probe(
            &app,
            method.clone(),
            &path,
            Some(&stranger),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 403, "{path} for a user of no org");
    }
    assert_eq!(app.gemini.stats().total_calls(), 0);
}

#[tokio::test]
async fn bad_ids_and_query_strings_are_4xx() {
    let app = spawn_app_with(app_settings).await;
    let tenant = create_tenant().await;
    let token = Some(tenant.requester.token.as_str());
    for id in [
        "not-a-uuid",
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "%E2%80%AE",
        "00000000-0000-0000-0000-00000000000g",
        &"9".repeat(5000),
        "%F0%9F%98%80",
        "'%20or%201=1--",
    ] {
        let status = probe(
            &app,
            Method::GET,
            &format!("/api/catalog/items/{id}"),
            token,
            None,
            Vec::new(),
        )
        .await;
        assert!(status == 400 || status == 404, "{id}: {status}");
    }
    for query in [
        "limit=-1",
        "limit=99999999999999999999999",
        "limit=1e3",
        "status=ACTIVE",
        "status=%00",
        "cursor=%zz",
        "cursor=====",
        "limit=1&limit=2",
        "%ff=1",
        &format!("cursor={}", "A".repeat(10_000)),
    ] {
        let status = probe(
            &app,
            Method::GET,
            &format!("/api/catalog/items?{query}"),
            token,
            None,
            Vec::new(),
        )
        .await;
        assert!(
            (400..500).contains(&status) || status == 200,
            "{query}: {status}"
        );
    }
}

/// A small, seeded xorshift generator: the same inputs on every run, so a
/// failure reproduces.
struct Fuzz(u64);

impl Fuzz {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        const PIECES: [&str; 16] = [
            "Slack",
            "",
            " ",
            "\u{0}",
            "\u{1b}[31m",
            "\u{202E}rtl",
            "\u{200B}",
            "\u{FEFF}",
            "😀",
            "ｆｕｌｌ",
            "a\nb",
            "\"quoted\"",
            "<script>",
            "%s%n",
            "Ω≈ç√",
            "null",
        ];
        let mut s = String::new();
        for _ in 0..self.below(4) {
            s.push_str(PIECES[self.below(PIECES.len() as u64) as usize]);
        }
        if self.below(10) == 0 {
            s.push_str(&"x".repeat(self.below(12_000) as usize));
        }
        s
    }

    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.text()),
            3 => [
                json!(0),
                json!(-1),
                json!(1e308),
                json!(0.5),
                json!(u64::MAX),
                json!(-1e-9),
                json!(10_000_001),
            ][self.below(7) as usize]
                .clone(),
            4 => json!(self.text()),
            5 => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
            _ => Value::Object(self.object(depth + 1)),
        }
    }

    fn object(&mut self, depth: u32) -> Map<String, Value> {
        const FIELDS: [&str; 16] = [
            "product_name",
            "product_names",
            "category",
            "additional_context",
            "texts",
            "task_type",
            "query",
            "threshold",
            "limit",
            "name",
            "description",
            "price",
            "pricing_type",
            "product_url",
            "metadata",
            "status",
        ];
        let mut map = Map::new();
        for _ in 0..self.below(6) {
            let key = if self.below(8) == 0 {
                self.text()
            } else {
                FIELDS[self.below(16) as usize].to_owned()
            };
            map.insert(key, self.value(depth));
        }
        map
    }
}

/// A valid body for each endpoint that reads one, for the generator to
/// mutate (paths with ids end in their action).
fn valid_body(path: &str) -> Value {
    let action = path.rsplit('/').next().unwrap_or_default();
    match (path, action) {
        ("/api/products/enrich", _) => {
            json!({ "product_name": "Dell XPS 13", "category": "Laptops" })
        }
        ("/api/products/enrich-batch", _) => json!({ "product_names": ["Slack", "Zoom"] }),
        ("/api/embeddings", _) => json!({ "texts": ["a pen", "a desk"] }),
        ("/api/catalog/search", _) => json!({ "query": "desk", "threshold": 0.2, "limit": 5 }),
        ("/api/catalog/items", _) => {
            json!({ "name": "Fuzzed chair", "price": 10.5, "metadata": {} })
        }
        ("/api/catalog/request-new-item", _) => {
            json!({ "name": "Fuzzed lamp", "category": "Lighting", "justification": "dark desk" })
        }
        ("/api/requests", _) => json!({
            "search_query": "standing desk",
            "search_results": [{ "name": "Desk", "similarity_score": 0.4 }],
            "justification": "none fit"
        }),
        ("/api/proposals", _) => {
            json!({ "proposal_type": "ADD_ITEM", "item_name": "Fuzzed desk", "item_price": 120 })
        }
        (_, "review") => json!({ "status": "approved", "review_notes": "fine" }),
        (_, "approve" | "reject") => json!({ "review_notes": "fine" }),
        _ => json!({}),
    }
}

#[tokio::test]
async fn generated_bodies_never_cause_a_server_error() {
    let app = spawn_app_with(app_settings).await;
    let tenant = create_tenant().await;
    let token = Some(tenant.admin.token.as_str());
    let mut fuzz = Fuzz(0x5EED_CA7A_1061_u64);
    let mut statuses = std::collections::BTreeMap::new();
    let posts = endpoints()
        .into_iter()
        .filter(|(m, p)| *m == Method::POST && !p.ends_with("/check"));
    for (method, path) in posts {
        for round in 0..80 {
            // Half random objects, half a valid body with one field changed or added.
            let body = if round % 2 == 0 {
                Value::Object(fuzz.object(0))
            } else {
                let mut body = valid_body(&path);
                let fields: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
                let key = if fields.is_empty() || fuzz.below(3) == 0 {
                    fuzz.text()
                } else {
                    fields[fuzz.below(fields.len() as u64) as usize].clone()
                };
                body[key] = fuzz.value(1);
                body
            };
            let status = probe(
                &app,
                method.clone(),
                &path,
                token,
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await;
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    // The generator reaches both sides: refused input and accepted input.
    assert!(statuses.get(&400).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(
        statuses.iter().any(|(s, n)| *s < 300 && *n > 0),
        "{statuses:?}"
    );
    eprintln!("generated bodies by status: {statuses:?}");
}
