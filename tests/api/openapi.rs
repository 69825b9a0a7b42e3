//! The OpenAPI document at `/api/openapi.json`: it describes exactly the
//! original's interface, every route it names is served, real answers of
//! every route (successes and errors) validate against it, and the limits it
//! states are the limits the server enforces.

use std::collections::BTreeSet;

use gemini_emulator::{Fault, FaultRule, Faults};
use reqwest::Method;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, create_tenant, spawn_app, spawn_app_with};
use crate::schema::OpenApiDocument;

/// The interface clients depend on: the original's routes, plus this
/// document and the bulk imports.
const INTERFACE: [(&str, &str); 27] = [
    ("get", "/"),
    ("get", "/api/health"),
    ("get", "/api/readiness"),
    ("get", "/api/openapi.json"),
    ("get", "/api/auth/verify"),
    ("post", "/api/products/enrich"),
    ("post", "/api/products/enrich-batch"),
    ("post", "/api/embeddings"),
    ("post", "/api/catalog/search"),
    ("get", "/api/catalog/items"),
    ("post", "/api/catalog/items"),
    ("get", "/api/catalog/items/{id}"),
    ("post", "/api/admin/embeddings/check"),
    ("post", "/api/requests"),
    ("get", "/api/requests"),
    ("get", "/api/requests/{id}"),
    ("post", "/api/requests/{id}/review"),
    ("post", "/api/proposals"),
    ("get", "/api/proposals"),
    ("get", "/api/proposals/{id}"),
    ("post", "/api/proposals/{id}/approve"),
    ("post", "/api/proposals/{id}/reject"),
    ("post", "/api/catalog/request-new-item"),
    ("get", "/api/admin/audit-log"),
    ("post", "/api/catalog/imports"),
    ("get", "/api/catalog/imports"),
    ("get", "/api/catalog/imports/{id}"),
];

/// [`INTERFACE`] as `(method, path template)` pairs.
fn interface() -> BTreeSet<(String, String)> {
    INTERFACE
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document(app: &TestApp) -> OpenApiDocument {
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    OpenApiDocument {
        doc: response.json().await.unwrap(),
    }
}

/// Every `(method, path template)` the document describes.
fn operations(doc: &OpenApiDocument) -> BTreeSet<(String, String)> {
    let paths = doc.doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| ((*m).to_owned(), path.clone()))
        })
        .collect()
}

fn concrete(template: &str) -> String {
    template.replace("{id}", &Uuid::new_v4().to_string())
}

#[tokio::test]
async fn the_document_describes_exactly_the_interface_and_every_route_is_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc.doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc.doc["openapi"]
    );

    let documented = operations(&doc);
    assert_eq!(documented, interface());

    // Served: no token gets 401 where the document asks for one, a probe
    // answers; never the router's 404 or 405.
    for (method, template) in &documented {
        let operation = &doc.doc["paths"][template][method];
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let response = app
            .client
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                format!("{}{}", app.address, concrete(template)),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if secured {
            assert_eq!(status, 401, "{method} {template}");
        } else {
            assert!(
                [200, 503].contains(&status),
                "{method} {template}: {status}"
            );
        }
    }

    // Every reference resolves, and the checker knows every keyword used.
    let mut refs = Vec::new();
    collect_refs(&doc.doc, &mut refs);
    assert!(refs.len() > 20, "only {} references", refs.len());
    for reference in refs {
        doc.resolve(&reference).unwrap();
    }
    assert_eq!(doc.unknown_keywords(), BTreeSet::new());
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// One request of the answer check.
struct Call<'a> {
    method: &'a str,
    template: &'a str,
    path: String,
    token: Option<&'a str>,
    body: Option<Value>,
    /// A body that is not JSON, and its media type.
    file: Option<(&'a str, &'a str)>,
    accept: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn new(method: &'a str, template: &'a str) -> Self {
        Self {
            method,
            template,
            path: template.to_owned(),
            token: None,
            body: None,
            file: None,
            accept: None,
        }
    }
    fn file(mut self, content_type: &'a str, text: &'a str) -> Self {
        self.file = Some((content_type, text));
        self
    }
    fn at(mut self, path: String) -> Self {
        self.path = path;
        self
    }
    fn by(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }
    fn body(mut self, body: &Value) -> Self {
        self.body = Some(body.clone());
        self
    }
    fn accept(mut self, accept: Option<&'a str>) -> Self {
        self.accept = accept;
        self
    }
}

/// Sends a request and validates the answer against the document; returns
/// the status and the body (each line's value for NDJSON).
async fn exchange(app: &TestApp, doc: &OpenApiDocument, call: Call<'_>) -> (u16, Vec<Value>) {
    let Call {
        method,
        template,
        path,
        token,
        body,
        file,
        accept,
    } = call;
    let mut request = app.client.request(
        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
        format!("{}{path}", app.address),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    if let Some((content_type, text)) = file {
        request = request
            .header("content-type", content_type)
            .body(text.to_owned());
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let values: Vec<Value> = if content_type == "application/x-ndjson" {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    let schema = doc
        .response_schema(method, template, status, &content_type)
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(schema) = schema {
        for value in &values {
            if let Err(e) = doc.validate(value, schema) {
                panic!("{method} {path} answered {status} off the document: {e}\n{value}");
            }
        }
    }
    (status, values)
}

#[tokio::test]
async fn real_answers_of_every_route_validate_against_the_document() {
    // One attempt per Gemini call, so a scripted fault fails exactly one item.
    let app = spawn_app_with(|env| {
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let doc = document(&app).await;
    let tenant = create_tenant().await;
    let admin = tenant.admin.token.as_str();
    let requester = tenant.requester.token.as_str();
    let mut seen = BTreeSet::new();
    let mut check = async |call: Call<'_>, wanted: u16| {
        let route = (call.method.to_owned(), call.template.to_owned());
        let shown = format!("{} {}", call.method, call.path);
        let (status, values) = exchange(&app, &doc, call).await;
        assert_eq!(status, wanted, "{shown}: {values:?}");
        seen.insert(route);
        values
    };

    for path in ["/", "/api/health", "/api/readiness", "/api/openapi.json"] {
        check(Call::new("get", path), 200).await;
    }

    let verify = "/api/auth/verify";
    check(Call::new("get", verify).by(admin), 200).await;
    check(Call::new("get", verify), 401).await;

    let enrich = "/api/products/enrich";
    let product = json!({"product_name": "Dell Latitude 5540", "category": "Laptops"});
    check(Call::new("post", enrich).by(admin).body(&product), 200).await;
    check(Call::new("post", enrich).by(admin).body(&json!({})), 400).await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(
            Fault::MalformedJson,
        )]));
    let values = check(Call::new("post", enrich).by(admin).body(&product), 502).await;
    assert_eq!(values[0]["error"]["details"]["service"], "gemini");
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    check(Call::new("post", enrich).by(admin).body(&product), 503).await;

    // A batch with one failed item, as JSON and as NDJSON.
    let batch = "/api/products/enrich-batch";
    let names = json!({"product_names": ["Desk lamp", "Office chair", "Monitor arm"]});
    for accept in [None, Some("application/x-ndjson")] {
        app.gemini.set_faults(Faults::with_rules(vec![
            FaultRule::always(Fault::status(500)).times(1),
        ]));
        let call = Call::new("post", batch)
            .by(admin)
            .body(&names)
            .accept(accept);
        let values = check(call, 200).await;
        let items: Vec<&Value> = match accept {
            None => values[0]["results"].as_array().unwrap().iter().collect(),
            Some(_) => values.iter().filter(|v| v.get("index").is_some()).collect(),
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items.iter().filter(|i| i.get("error").is_some()).count(), 1);
    }
    app.gemini.set_faults(Faults::default());

    let embeddings = "/api/embeddings";
    let texts = json!({"texts": ["a", "b"], "task_type": "retrieval_query"});
    let values = check(Call::new("post", embeddings).by(admin).body(&texts), 200).await;
    assert_eq!(values[0]["embeddings"].as_array().unwrap().len(), 2);
    let texts = json!({"texts": ["a"], "task_type": "nonsense"});
    check(Call::new("post", embeddings).by(admin).body(&texts), 400).await;

    let items = "/api/catalog/items";
    let item = json!({
        "name": "Standing desk", "description": "Electric, 120 x 60 cm", "category": "Furniture",
        "vendor": "Fully", "price": 499.5, "pricing_type": "one_time", "sku": "SD-1",
        "product_url": "https://example.com/desk", "metadata": {"colour": "oak"},
    });
    let values = check(Call::new("post", items).by(admin).body(&item), 201).await;
    let id = values[0]["id"].as_str().unwrap().to_owned();
    check(Call::new("post", items).by(requester).body(&item), 403).await;
    let page = Call::new("get", items).at(format!("{items}?limit=1"));
    let values = check(page.by(requester), 200).await;
    assert_eq!(values[0]["items"][0]["id"], id.as_str());

    let item_path = "/api/catalog/items/{id}";
    let own = Call::new("get", item_path).at(format!("{items}/{id}"));
    check(own.by(requester), 200).await;
    let missing = Call::new("get", item_path).at(concrete(item_path));
    check(missing.by(requester), 404).await;

    let search = "/api/catalog/search";
    let query = json!({"query": "standing desk", "threshold": 0.0, "limit": 5});
    let values = check(Call::new("post", search).by(requester).body(&query), 200).await;
    assert_eq!(values[0]["results"][0]["item_id"], id.as_str());

    let repair = "/api/admin/embeddings/check";
    check(Call::new("post", repair).by(admin), 200).await;
    check(Call::new("post", repair).by(requester), 403).await;

    // The procurement workflow, start to end.
    let reviewer = tenant.reviewer.token.as_str();
    let requests = "/api/requests";
    let filed = json!({"search_query": "chair", "search_results": [{"name": "Chair"}]});
    let values = check(Call::new("post", requests).by(requester).body(&filed), 201).await;
    let request_id = values[0]["id"].as_str().unwrap().to_owned();
    check(Call::new("get", requests).by(requester), 200).await;
    let request_path = "/api/requests/{id}";
    let own = Call::new("get", request_path).at(format!("{requests}/{request_id}"));
    check(own.by(requester), 200).await;
    let missing = Call::new("get", request_path).at(concrete(request_path));
    check(missing.by(requester), 404).await;
    let review_path = "/api/requests/{id}/review";
    let review = json!({"status": "approved", "create_proposal":
        {"proposal_type": "ADD_ITEM", "item_name": "Chair", "item_metadata": {"legs": 4}}});
    let at = format!("{requests}/{request_id}/review");
    let values = check(
        Call::new("post", review_path)
            .at(at.clone())
            .by(reviewer)
            .body(&review),
        200,
    )
    .await;
    let proposal_id = values[0]["proposal"]["id"].as_str().unwrap().to_owned();
    check(
        Call::new("post", review_path)
            .at(at)
            .by(reviewer)
            .body(&review),
        409,
    )
    .await;

    let proposals = "/api/proposals";
    let proposed = json!({"proposal_type": "ADD_ITEM", "item_name": "Lamp"});
    let values = check(
        Call::new("post", proposals).by(reviewer).body(&proposed),
        201,
    )
    .await;
    let lamp_id = values[0]["id"].as_str().unwrap().to_owned();
    check(
        Call::new("post", proposals).by(requester).body(&proposed),
        403,
    )
    .await;
    check(Call::new("get", proposals).by(requester), 200).await;
    let proposal_path = "/api/proposals/{id}";
    let own = Call::new("get", proposal_path).at(format!("{proposals}/{proposal_id}"));
    check(own.by(requester), 200).await;
    let approve = "/api/proposals/{id}/approve";
    let at = format!("{proposals}/{proposal_id}/approve");
    check(
        Call::new("post", approve)
            .at(at.clone())
            .by(admin)
            .body(&json!({})),
        200,
    )
    .await;
    check(
        Call::new("post", approve).at(at).by(admin).body(&json!({})),
        409,
    )
    .await;
    let reject = "/api/proposals/{id}/reject";
    let at = format!("{proposals}/{lamp_id}/reject");
    let notes = json!({"review_notes": "no"});
    check(
        Call::new("post", reject).at(at).by(reviewer).body(&notes),
        200,
    )
    .await;

    let new_item = "/api/catalog/request-new-item";
    let asked = json!({"name": "Label printer", "use_ai_enrichment": true});
    let values = check(Call::new("post", new_item).by(requester).body(&asked), 201).await;
    assert!(values[0]["ai_enrichment"].is_object());

    let audit = "/api/admin/audit-log";
    let values = check(Call::new("get", audit).by(admin), 200).await;
    assert!(values[0]["events"].as_array().unwrap().len() >= 6);
    check(Call::new("get", audit).by(requester), 403).await;

    // Bulk imports (no worker runs here: the file's one row is refused, so
    // the job is complete at once).
    let imports = "/api/catalog/imports";
    let values = check(
        Call::new("post", imports)
            .by(admin)
            .file("text/csv", "name\n\n,\n"),
        202,
    )
    .await;
    assert_eq!(values[0]["status"], "completed");
    let import_id = values[0]["id"].as_str().unwrap().to_owned();
    check(
        Call::new("post", imports)
            .by(requester)
            .file("text/csv", "name\nA\n"),
        403,
    )
    .await;
    check(
        Call::new("post", imports)
            .by(admin)
            .file("application/json", "{}"),
        415,
    )
    .await;
    check(
        Call::new("post", imports)
            .by(admin)
            .file("text/csv", "colour\nred\n"),
        400,
    )
    .await;
    let values = check(Call::new("get", imports).by(admin), 200).await;
    assert_eq!(values[0]["imports"][0]["id"], import_id.as_str());
    check(Call::new("get", imports).by(requester), 403).await;
    let import_path = "/api/catalog/imports/{id}";
    let own = || Call::new("get", import_path).at(format!("{imports}/{import_id}"));
    check(own().by(admin), 200).await;
    let lines = check(own().by(admin).accept(Some("application/x-ndjson")), 200).await;
    assert_eq!(lines.len(), 1, "a complete job's stream is its one line");
    let missing = Call::new("get", import_path).at(concrete(import_path));
    check(missing.by(admin), 404).await;

    assert_eq!(seen, interface(), "every route's answers are checked");
}

/// A body the operation accepts: its required fields, filled minimally.
fn minimal_body(doc: &OpenApiDocument, schema: &Value, seed: usize) -> Map<String, Value> {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => doc.resolve(reference).unwrap(),
        None => schema,
    };
    let mut body = Map::new();
    // With a `oneOf` of variants, the first variant's requirements too.
    let variant = &schema["oneOf"][0];
    let required = schema["required"]
        .as_array()
        .into_iter()
        .chain(variant["required"].as_array())
        .flatten();
    for name in required {
        let name = name.as_str().unwrap();
        let declared = match variant["properties"].get(name) {
            Some(narrowed) => narrowed,
            None => &schema["properties"][name],
        };
        let property = value_schema(doc, declared);
        let value = match (property["type"].as_str(), property["enum"].get(0)) {
            (_, Some(first)) => first.clone(),
            (Some("array"), _) => json!([format!("probe {seed}")]),
            _ => json!(format!("probe {seed}")),
        };
        body.insert(name.to_owned(), value);
    }
    body
}

/// The schema a value must meet: references followed, and of a `oneOf`
/// (a value or blank or null) the branch that states the limits.
fn value_schema<'a>(doc: &'a OpenApiDocument, schema: &'a Value) -> &'a Value {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => doc.resolve(reference).unwrap(),
        None => schema,
    };
    match schema["oneOf"].as_array() {
        Some(branches) => branches
            .iter()
            .map(|branch| value_schema(doc, branch))
            .find(|branch| {
                ["maxLength", "maximum", "minimum"]
                    .iter()
                    .any(|k| branch.get(*k).is_some())
            })
            .unwrap_or(schema),
        None => schema,
    }
}

#[tokio::test]
async fn the_limits_the_document_states_are_the_limits_the_server_enforces() {
    // Two requests per limit, all from one admin: more than a minute's burst.
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    })
    .await;
    let doc = document(&app).await;
    let tenant = create_tenant().await;
    let mut checked = 0;
    for (method, template) in operations(&doc) {
        // Operations on one row (review, approve, reject) need a row per
        // case; their bodies' types are the ones checked here elsewhere.
        if template.contains('{') {
            continue;
        }
        let operation = &doc.doc["paths"][&template][&method];
        let Some(schema) = operation["requestBody"]["content"]["application/json"].get("schema")
        else {
            continue;
        };
        let resolved = match schema["$ref"].as_str() {
            Some(reference) => doc.resolve(reference).unwrap(),
            None => schema,
        };
        for (field, property) in resolved["properties"].as_object().unwrap() {
            let property = value_schema(&doc, property);
            // (value at the limit, value past it) for each limit stated.
            let mut cases = Vec::new();
            if let Some(max) = property["maxLength"].as_u64() {
                let max = usize::try_from(max).unwrap();
                cases.push((
                    "maxLength",
                    json!("é".repeat(max)),
                    json!("é".repeat(max + 1)),
                ));
            }
            let integer = property["type"].to_string().contains("integer");
            let number = |n: f64| {
                if integer { json!(n as i64) } else { json!(n) }
            };
            if let Some(max) = property["maximum"].as_f64() {
                cases.push(("maximum", number(max), number(max + 1.0)));
            }
            if let Some(min) = property["minimum"].as_f64() {
                cases.push(("minimum", number(min), number(min - 1.0)));
            }
            for (limit, at, past) in cases {
                checked += 1;
                let mut body = minimal_body(&doc, schema, checked);
                body.insert(field.clone(), past.clone());
                let response = app
                    .post_json(&template, Some(&tenant.admin.token), &Value::Object(body))
                    .await;
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap();
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    status == 400 && message.contains(field.as_str()),
                    "{template} {field} past its {limit}: {status} {answer}"
                );

                // Field-specific rules beyond the length (URL scheme, enums)
                // need a value of their own shape at the limit.
                let at = match field.as_str() {
                    "product_url" | "item_product_url" => json!(format!(
                        "https://e.com/{}",
                        "a".repeat(at.as_str().unwrap().chars().count() - 14)
                    )),
                    "pricing_type" | "item_pricing_type" | "status" => continue,
                    _ => at,
                };
                let mut body = minimal_body(&doc, schema, checked);
                body.insert(field.clone(), at);
                let response = app
                    .post_json(&template, Some(&tenant.admin.token), &Value::Object(body))
                    .await;
                let status = response.status().as_u16();
                assert!(
                    (200..300).contains(&status),
                    "{template} {field} at its {limit}: {status} {}",
                    response.text().await.unwrap()
                );
            }
        }
    }
    assert!(checked >= 15, "only {checked} limits checked");
}
