//! Checks JSON values against the service's OpenAPI 3.1 document: the subset
//! of JSON Schema the document uses, strictly. A keyword it does not know
//! fails the check rather than passing silently, and an object may carry only
//! properties its schema declares, so an undocumented field in an answer is
//! caught too. Small enough to read, which a general validator crate is not.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use uuid::Uuid;

/// Keywords that describe and never constrain.
const ANNOTATIONS: [&str; 5] = ["description", "title", "examples", "default", "deprecated"];
/// Keywords the checker enforces.
const CONSTRAINTS: [&str; 21] = [
    "$ref",
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "allOf",
    "oneOf",
    "anyOf",
    "pattern",
    "maxProperties",
    "propertyNames",
    "additionalProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
    "nullable",
];

/// The document, and lookups into it.
pub(crate) struct OpenApiDocument {
    pub doc: Value,
}

impl OpenApiDocument {
    /// The schema of the answer `status` with `content_type` to `method` on
    /// `template`; the operation's `default` answer when the status is not
    /// listed. `Ok(None)` when the answer is documented without a schema.
    pub(crate) fn response_schema(
        &self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
    ) -> Result<Option<&Value>, String> {
        let operation = &self.doc["paths"][template][method.to_ascii_lowercase()];
        if !operation.is_object() {
            return Err(format!("{method} {template} is not in the document"));
        }
        let responses = &operation["responses"];
        let response = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .ok_or_else(|| format!("{method} {template}: answer {status} is not documented"))?;
        let content = &response["content"][content_type];
        if !content.is_object() {
            return Err(format!(
                "{method} {template}: answer {status} as {content_type} is not documented"
            ));
        }
        Ok(content.get("schema"))
    }

    /// Whether `value` satisfies `schema`; the error names where it does not.
    pub(crate) fn validate(&self, value: &Value, schema: &Value) -> Result<(), String> {
        self.check(value, schema, "$", false)
    }

    /// The schema `#/components/schemas/...` names.
    pub(crate) fn resolve(&self, reference: &str) -> Result<&Value, String> {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("unsupported $ref {reference}"))?;
        self.doc["components"]["schemas"]
            .get(name)
            .ok_or_else(|| format!("$ref {reference} does not resolve"))
    }

    /// `in_all_of`: this schema is one branch of an `allOf`, whose siblings
    /// may declare the other properties.
    fn check(
        &self,
        value: &Value,
        schema: &Value,
        at: &str,
        in_all_of: bool,
    ) -> Result<(), String> {
        let schema = schema
            .as_object()
            .ok_or_else(|| format!("{at}: schema is not an object: {schema}"))?;
        for (keyword, constraint) in schema {
            self.keyword(value, keyword, constraint, at)?;
        }
        // Undeclared properties are an error unless the schema allows any.
        if !in_all_of && value.is_object() && !schema.contains_key("additionalProperties") {
            let declared = self.declared_properties(schema)?;
            if let Some(object) = value.as_object() {
                if !declared.is_empty() {
                    if let Some(extra) = object.keys().find(|k| !declared.contains(k.as_str())) {
                        return Err(format!("{at}: property {extra} is not documented"));
                    }
                }
            }
        }
        Ok(())
    }

    fn keyword(
        &self,
        value: &Value,
        keyword: &str,
        constraint: &Value,
        at: &str,
    ) -> Result<(), String> {
        let fail = |why: String| Err(format!("{at}: {why} (value {value})"));
        match keyword {
            "$ref" => {
                let target = self.resolve(constraint.as_str().unwrap_or_default())?;
                self.check(value, target, at, true)
            }
            "type" => {
                let types: Vec<&str> = match constraint {
                    Value::String(t) => vec![t],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return fail(format!("bad type {constraint}")),
                };
                if types.iter().any(|t| has_type(value, t)) {
                    Ok(())
                } else {
                    fail(format!("expected type {constraint}"))
                }
            }
            "properties" => {
                let (Some(object), Some(properties)) = (value.as_object(), constraint.as_object())
                else {
                    return Ok(());
                };
                for (name, schema) in properties {
                    if let Some(field) = object.get(name) {
                        self.check(field, schema, &format!("{at}.{name}"), false)?;
                    }
                }
                Ok(())
            }
            "required" => {
                let Some(object) = value.as_object() else {
                    return Ok(());
                };
                for name in constraint
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !object.contains_key(name) {
                        return fail(format!("required property {name} is missing"));
                    }
                }
                Ok(())
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    self.check(item, constraint, &format!("{at}[{i}]"), false)?;
                }
                Ok(())
            }
            "enum" => {
                if constraint
                    .as_array()
                    .is_some_and(|values| values.contains(value))
                {
                    Ok(())
                } else {
                    fail(format!("not one of {constraint}"))
                }
            }
            "allOf" => {
                for branch in branches(constraint) {
                    self.check(value, branch, at, true)?;
                }
                Ok(())
            }
            "oneOf" => {
                let matching = branches(constraint)
                    .filter(|branch| self.check(value, branch, at, false).is_ok())
                    .count();
                if matching == 1 {
                    Ok(())
                } else {
                    fail(format!(
                        "matches {matching} of oneOf {constraint}, not exactly one"
                    ))
                }
            }
            "anyOf" => {
                if branches(constraint).any(|branch| self.check(value, branch, at, false).is_ok()) {
                    Ok(())
                } else {
                    fail(format!("matches none of anyOf {constraint}"))
                }
            }
            "pattern" => {
                let Some(text) = value.as_str() else {
                    return Ok(());
                };
                let pattern = constraint.as_str().unwrap_or_default();
                let regex = regex::Regex::new(pattern)
                    .map_err(|e| format!("{at}: pattern {pattern} does not compile: {e}"))?;
                if regex.is_match(text) {
                    Ok(())
                } else {
                    fail(format!("does not match {pattern}"))
                }
            }
            "maxProperties" => match (value.as_object(), constraint.as_u64()) {
                (Some(object), Some(max)) if object.len() as u64 > max => {
                    fail(format!("more than {max} properties"))
                }
                _ => Ok(()),
            },
            "propertyNames" => {
                for key in value.as_object().into_iter().flat_map(Map::keys) {
                    self.check(
                        &Value::from(key.as_str()),
                        constraint,
                        &format!("{at} key {key}"),
                        false,
                    )?;
                }
                Ok(())
            }
            "additionalProperties" => {
                for (key, field) in value.as_object().into_iter().flatten() {
                    self.check(field, constraint, &format!("{at}.{key}"), false)?;
                }
                Ok(())
            }
            "minimum" | "maximum" | "minLength" | "maxLength" | "minItems" | "maxItems" => {
                // What the bound applies to: the number, the length in
                // characters, or the number of items.
                let measured = match keyword {
                    "minimum" | "maximum" => value.as_f64(),
                    "minLength" | "maxLength" => value.as_str().map(|s| s.chars().count() as f64),
                    _ => value.as_array().map(|items| items.len() as f64),
                };
                let (Some(measured), Some(bound)) = (measured, constraint.as_f64()) else {
                    return Ok(());
                };
                let within = if keyword.starts_with("min") {
                    measured >= bound
                } else {
                    measured <= bound
                };
                if within {
                    Ok(())
                } else {
                    fail(format!("{keyword} {bound}"))
                }
            }
            "format" => match (constraint.as_str(), value) {
                (Some("uuid"), Value::String(s)) if s.parse::<Uuid>().is_err() => {
                    fail("not a UUID".to_owned())
                }
                (Some("date-time"), Value::String(s)) if !is_date_time(s) => {
                    fail("not an RFC 3339 date-time".to_owned())
                }
                (Some("int32"), Value::Number(n))
                    if n.as_i64().is_none_or(|v| i32::try_from(v).is_err()) =>
                {
                    fail("not an int32".to_owned())
                }
                _ => Ok(()),
            },
            // OpenAPI 3.0's spelling; 3.1 documents say `type: [.., "null"]`.
            "nullable" => Ok(()),
            k if ANNOTATIONS.contains(&k) => Ok(()),
            other => Err(format!("{at}: the checker does not know keyword {other}")),
        }
    }

    /// Keywords used anywhere in the document's schemas that the checker
    /// neither enforces nor knows to be annotations.
    pub(crate) fn unknown_keywords(&self) -> BTreeSet<String> {
        fn walk(schema: &Value, out: &mut BTreeSet<String>) {
            let Some(schema) = schema.as_object() else {
                return;
            };
            for (keyword, value) in schema {
                if !CONSTRAINTS.contains(&keyword.as_str())
                    && !ANNOTATIONS.contains(&keyword.as_str())
                {
                    out.insert(keyword.clone());
                }
                match keyword.as_str() {
                    "properties" => value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .for_each(|(_, v)| walk(v, out)),
                    "items" | "propertyNames" | "additionalProperties" => walk(value, out),
                    "allOf" | "oneOf" | "anyOf" => branches(value).for_each(|v| walk(v, out)),
                    _ => {}
                }
            }
        }
        fn schemas_in(value: &Value, out: &mut Vec<Value>) {
            match value {
                Value::Object(map) => {
                    for (key, value) in map {
                        if key == "schema" {
                            out.push(value.clone());
                        } else {
                            schemas_in(value, out);
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| schemas_in(v, out)),
                _ => {}
            }
        }
        let mut schemas: Vec<Value> = self.doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, s)| s.clone())
            .collect();
        schemas_in(&self.doc["paths"], &mut schemas);
        let mut unknown = BTreeSet::new();
        for schema in &schemas {
            walk(schema, &mut unknown);
        }
        unknown
    }

    /// Every property `schema` declares, through `$ref` and `allOf`.
    fn declared_properties<'a>(
        &'a self,
        schema: &'a Map<String, Value>,
    ) -> Result<BTreeSet<&'a str>, String> {
        let mut names: BTreeSet<&str> = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys().map(String::as_str))
            .collect();
        let mut parts: Vec<&Value> =
            branches(schema.get("allOf").unwrap_or(&Value::Null)).collect();
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            parts.push(self.resolve(reference)?);
        }
        for part in parts {
            if let Some(part) = part.as_object() {
                names.extend(self.declared_properties(part)?);
            }
        }
        Ok(names)
    }
}

fn branches(constraint: &Value) -> impl Iterator<Item = &Value> {
    constraint.as_array().into_iter().flatten()
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

/// `2026-11-28T22:18:46.123456+00:00` or with `Z`: date, `T`, time, offset.
fn is_date_time(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    let date_ok = date.len() == 10 && date.split('-').count() == 3;
    let time_ok = time.ends_with('Z') || time.contains('+') || time.rfind('-').is_some();
    date_ok && time_ok && time.len() >= 9
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document() -> OpenApiDocument {
        OpenApiDocument {
            doc: json!({"components": {"schemas": {
                "Item": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "name": {"type": "string", "maxLength": 3},
                        "price": {"type": ["number", "null"], "minimum": 0},
                    },
                },
                "Tagged": {"allOf": [
                    {"$ref": "#/components/schemas/Item"},
                    {"type": "object", "properties": {"tag": {"type": "string", "enum": ["a"]}}},
                ]},
            }}}),
        }
    }

    #[test]
    fn accepts_what_the_schema_allows_and_names_what_it_does_not() {
        let doc = document();
        let item = json!({"$ref": "#/components/schemas/Item"});
        let tagged = json!({"$ref": "#/components/schemas/Tagged"});
        let id = Uuid::new_v4().to_string();
        assert_eq!(
            doc.validate(&json!({"id": id, "name": "ab", "price": null}), &item),
            Ok(())
        );
        assert_eq!(
            doc.validate(&json!({"id": id, "name": "ab", "tag": "a"}), &tagged),
            Ok(())
        );
        let refused = [
            (json!({"id": id}), &item, "name is missing"),
            (json!({"id": "x", "name": "a"}), &item, "UUID"),
            (json!({"id": id, "name": "abcd"}), &item, "maxLength"),
            (json!({"id": id, "name": 5}), &item, "expected type"),
            (
                json!({"id": id, "name": "a", "price": -1}),
                &item,
                "minimum",
            ),
            (
                json!({"id": id, "name": "a", "extra": 1}),
                &item,
                "extra is not documented",
            ),
            (
                json!({"id": id, "name": "a", "tag": "b"}),
                &tagged,
                "not one of",
            ),
            (
                json!({"id": id, "name": "a", "other": 1}),
                &tagged,
                "other is not documented",
            ),
        ];
        for (value, schema, why) in refused {
            let error = doc.validate(&value, schema).unwrap_err();
            assert!(error.contains(why), "{value}: {error}");
        }
    }

    #[test]
    fn unknown_keywords_fail_instead_of_passing() {
        let error = document()
            .validate(&json!("x"), &json!({"contentEncoding": "base64"}))
            .unwrap_err();
        assert!(
            error.contains("does not know keyword contentEncoding"),
            "{error}"
        );
        let mut doc = document();
        doc.doc["components"]["schemas"]["Item"]["properties"]["name"]["if"] = json!({});
        assert_eq!(doc.unknown_keywords(), BTreeSet::from(["if".to_owned()]));
        let error = document()
            .validate(&json!("x"), &json!({"pattern": "^y$"}))
            .unwrap_err();
        assert!(error.contains("does not match"), "{error}");
    }
}
