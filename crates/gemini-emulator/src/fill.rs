//! Deterministic "model output": reads the product name out of a prompt,
//! infers vendor, category, price and specs from it, and fills in any JSON
//! schema with values that conform to it (types, required fields, enums).
//!
//! Same prompt, same answer: tests can rely on it.

use serde_json::{Map, Number, Value, json};

/// What the emulator "knows" about a product, inferred from its name alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// The name, standardised (collapsed spaces, capitalised words).
    pub name: String,
    /// The vendor: a known brand in the name, else its first word.
    pub vendor: String,
    /// Whether the vendor is a brand the emulator knows.
    pub known_vendor: bool,
    /// A category from keywords in the name.
    pub category: &'static str,
    /// Specs read from tokens such as `16GB`, `28cm`, `27-inch`.
    pub specs: Map<String, Value>,
    /// Lower-case words of the name.
    pub words: Vec<String>,
    hash: u64,
}

const KNOWN_VENDORS: &[&str] = &[
    "Acme",
    "Adobe",
    "Apple",
    "Asus",
    "Atlassian",
    "AWS",
    "Bose",
    "Brother",
    "Canon",
    "Cisco",
    "Dell",
    "Dropbox",
    "Epson",
    "Figma",
    "GitHub",
    "Google",
    "HP",
    "IKEA",
    "Jabra",
    "JetBrains",
    "Lenovo",
    "LG",
    "Logitech",
    "Microsoft",
    "Notion",
    "Oracle",
    "Salesforce",
    "Samsung",
    "Slack",
    "Sony",
    "Steelcase",
    "Zoom",
];

/// Category, keywords that select it, and a typical price in USD.
const CATEGORIES: &[(&str, &[&str], f64)] = &[
    (
        "Software",
        &[
            "software",
            "license",
            "licence",
            "subscription",
            "saas",
            "cloud",
            "crm",
            "suite",
            "365",
            "workspace",
            "creative",
            "jira",
            "slack",
            "zoom",
            "seat",
            "seats",
        ],
        15.0,
    ),
    (
        "Laptops",
        &[
            "laptop",
            "notebook",
            "macbook",
            "thinkpad",
            "chromebook",
            "ultrabook",
            "xps",
        ],
        1200.0,
    ),
    ("Monitors", &["monitor", "display", "screen"], 320.0),
    (
        "Peripherals",
        &[
            "keyboard",
            "mouse",
            "headset",
            "webcam",
            "dock",
            "docking",
            "headphones",
            "speaker",
            "trackpad",
        ],
        85.0,
    ),
    (
        "Furniture",
        &["chair", "desk", "table", "cabinet", "shelf", "standing"],
        450.0,
    ),
    (
        "Networking",
        &[
            "router", "switch", "firewall", "access", "wifi", "ethernet", "modem",
        ],
        260.0,
    ),
    ("Printers", &["printer", "scanner", "toner", "ink"], 340.0),
    (
        "Phones",
        &["phone", "iphone", "smartphone", "pixel", "galaxy"],
        800.0,
    ),
    (
        "Kitchen > Cookware",
        &[
            "pan", "pot", "knife", "kettle", "mixer", "blender", "cookware",
        ],
        60.0,
    ),
    (
        "Office Supplies",
        &[
            "paper",
            "pen",
            "pens",
            "stapler",
            "notebooks",
            "folder",
            "binder",
            "marker",
            "envelope",
        ],
        12.0,
    ),
];

impl Product {
    /// Infers a product from a prompt: the name is taken from a
    /// `Product name:` line, else the first quoted text, else the first line.
    pub fn from_prompt(prompt: &str) -> Self {
        Self::from_name(&product_name_in(prompt))
    }

    /// Infers a product from its name.
    pub fn from_name(raw: &str) -> Self {
        let name = standardise(raw);
        let words: Vec<String> = name
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let known = words.iter().find_map(|w| {
            KNOWN_VENDORS
                .iter()
                .find(|v| v.eq_ignore_ascii_case(w))
                .map(|v| (*v).to_owned())
        });
        let vendor = known.clone().unwrap_or_else(|| {
            name.split_whitespace()
                .next()
                .map_or_else(|| "Generic".to_owned(), str::to_owned)
        });
        let category = CATEGORIES
            .iter()
            .find(|(_, keywords, _)| words.iter().any(|w| keywords.contains(&w.as_str())))
            .map_or("General", |(category, _, _)| *category);
        Self {
            specs: specs_in(&name),
            hash: fnv1a(name.to_lowercase().as_bytes()),
            known_vendor: known.is_some(),
            name,
            vendor,
            category,
            words,
        }
    }

    /// A price in USD, rounded to cents: the category's typical price, varied by name.
    pub fn price(&self) -> f64 {
        let base = CATEGORIES
            .iter()
            .find(|(c, _, _)| *c == self.category)
            .map_or(100.0, |(_, _, price)| *price);
        let factor = 0.75 + (self.hash % 50) as f64 / 100.0;
        ((base * factor) * 100.0).round() / 100.0 - 0.01
    }

    /// `monthly` for software, `one_time` for goods.
    pub fn pricing_type(&self) -> &'static str {
        if self.category == "Software" {
            "monthly"
        } else {
            "one_time"
        }
    }

    /// One or two plausible sentences.
    pub fn description(&self) -> String {
        let kind = self
            .category
            .rsplit(" > ")
            .next()
            .unwrap_or(self.category)
            .to_lowercase();
        let specs = if self.specs.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self
                .specs
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            format!(" with {}", list.join(", "))
        };
        format!(
            "{} from {} is a {kind} product{specs}. It suits organisations that need dependable {kind} for everyday work.",
            self.name, self.vendor
        )
    }

    /// The vendor's product page.
    pub fn url(&self) -> String {
        let domain: String = self
            .vendor
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let slug = self.words.join("-");
        format!("https://www.{domain}.com/products/{slug}")
    }

    /// A stable stock-keeping unit.
    pub fn sku(&self) -> String {
        let prefix: String = self
            .vendor
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(4)
            .collect::<String>()
            .to_uppercase();
        format!("{prefix}-{:06}", self.hash % 1_000_000)
    }

    /// `high` for known brands, `medium` otherwise.
    pub fn confidence(&self) -> &'static str {
        if self.known_vendor { "high" } else { "medium" }
    }

    fn features(&self) -> Vec<Value> {
        let mut features = vec![json!(format!("{} quality", self.vendor))];
        features.extend(
            self.words
                .iter()
                .filter(|w| w.len() > 3 && !w.eq_ignore_ascii_case(&self.vendor))
                .take(2)
                .map(|w| json!(w.clone())),
        );
        features
    }

    fn metadata(&self) -> Value {
        json!({ "brand": self.vendor, "specs": self.specs, "features": self.features() })
    }
}

/// Fills `schema` (a JSON Schema, or Gemini's `Schema` with upper-case types)
/// with values about `product` that conform to it.
pub fn fill(schema: &Value, product: &Product) -> Value {
    Filler {
        root: schema,
        product,
    }
    .value("", schema, 0)
}

struct Filler<'a> {
    root: &'a Value,
    product: &'a Product,
}

impl Filler<'_> {
    fn value(&self, key: &str, schema: &Value, depth: usize) -> Value {
        if depth > 16 {
            return Value::Null;
        }
        let schema = self.resolve(schema);
        if let Some(constant) = schema.get("const") {
            return constant.clone();
        }
        if let Some(variants) = schema.get("enum").and_then(Value::as_array) {
            return self.pick_variant(key, variants);
        }
        for keyword in ["anyOf", "any_of", "oneOf", "allOf"] {
            if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
                let option = options
                    .iter()
                    .find(|o| type_of(self.resolve(o)).as_deref() != Some("null"))
                    .or(options.first());
                if let Some(option) = option {
                    return self.value(key, option, depth + 1);
                }
            }
        }
        match type_of(schema).as_deref() {
            Some("object") => self.object(key, schema, depth),
            Some("array") => self.array(key, schema, depth),
            Some("string") => Value::String(self.string(key, schema)),
            Some("number") => self.number(key, schema, false),
            Some("integer") => self.number(key, schema, true),
            Some("boolean") => Value::Bool(true),
            Some("null") => Value::Null,
            _ if schema.get("properties").is_some() => self.object(key, schema, depth),
            _ => Value::String(self.string(key, schema)),
        }
    }

    /// Follows a local `$ref` (`#/$defs/X`, `#/definitions/X`).
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| self.root.pointer(pointer))
                .unwrap_or(schema),
            None => schema,
        }
    }

    fn object(&self, key: &str, schema: &Value, depth: usize) -> Value {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return if key.contains("metadata") {
                self.product.metadata()
            } else if key.contains("spec") {
                Value::Object(self.product.specs.clone())
            } else {
                json!({})
            };
        };
        let mut object = Map::new();
        for (name, property) in properties {
            object.insert(name.clone(), self.value(name, property, depth + 1));
        }
        Value::Object(object)
    }

    fn array(&self, key: &str, schema: &Value, depth: usize) -> Value {
        let item_schema = schema
            .get("items")
            .cloned()
            .unwrap_or(json!({"type": "string"}));
        let bound = |name: &str, alt: &str| {
            schema.get(name).or_else(|| schema.get(alt)).and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
        };
        let min = bound("minItems", "min_items").unwrap_or(0);
        let max = bound("maxItems", "max_items").unwrap_or(u64::MAX);
        let wanted = 3u64.clamp(min, max.max(min));
        let is_string_list = type_of(self.resolve(&item_schema)).as_deref() == Some("string");
        let mut items = Vec::new();
        if is_string_list && (key.contains("feature") || key.contains("tag")) {
            items.extend(self.product.features());
            items.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
        }
        while (items.len() as u64) < wanted {
            items.push(self.value(key, &item_schema, depth + 1));
        }
        Value::Array(items)
    }

    fn string(&self, key: &str, schema: &Value) -> String {
        let p = self.product;
        let key = key.to_lowercase();
        let value = if ["vendor", "brand", "manufacturer", "maker"]
            .iter()
            .any(|k| key.contains(k))
        {
            p.vendor.clone()
        } else if key.contains("category") {
            p.category.to_owned()
        } else if key.contains("description") || key.contains("summary") {
            p.description()
        } else if key.contains("url") || key.contains("link") || format_of(schema) == Some("uri") {
            p.url()
        } else if key.contains("sku") || key.contains("part_number") || key.contains("model_number")
        {
            p.sku()
        } else if key.contains("pricing") {
            p.pricing_type().to_owned()
        } else if key.contains("confidence") {
            p.confidence().to_owned()
        } else if key.contains("currency") {
            "USD".to_owned()
        } else if let Some(spec) = p.specs.get(&key).and_then(Value::as_str) {
            spec.to_owned()
        } else {
            p.name.clone()
        };
        let max = schema
            .get("maxLength")
            .or_else(|| schema.get("max_length"))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
        match max {
            Some(max) => value
                .chars()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect(),
            None => value,
        }
    }

    fn number(&self, key: &str, schema: &Value, integer: bool) -> Value {
        let key = key.to_lowercase();
        let mut n = if key.contains("price") || key.contains("cost") || key.contains("amount") {
            self.product.price()
        } else if key.contains("confidence") || key.contains("score") {
            0.9
        } else {
            (self.product.hash % 100) as f64 + 1.0
        };
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            n = n.max(min);
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            n = n.min(max);
        }
        if integer {
            json!(n.round() as i64)
        } else {
            Number::from_f64(n).map_or(Value::Null, Value::Number)
        }
    }

    /// An enum value: the one the product suggests when the key is known,
    /// else one that appears in the name, else the first.
    fn pick_variant(&self, key: &str, variants: &[Value]) -> Value {
        let p = self.product;
        let key = key.to_lowercase();
        let preferred = if key.contains("pricing") {
            Some(p.pricing_type().to_owned())
        } else if key.contains("confidence") {
            Some(p.confidence().to_owned())
        } else if key.contains("category") {
            Some(p.category.to_owned())
        } else {
            None
        };
        let as_str = |v: &Value| v.as_str().map(str::to_lowercase);
        preferred
            .and_then(|want| {
                variants
                    .iter()
                    .find(|v| as_str(v).as_deref() == Some(&want.to_lowercase()))
            })
            .or_else(|| {
                variants
                    .iter()
                    .find(|v| as_str(v).is_some_and(|s| p.words.contains(&s)))
            })
            .or_else(|| variants.iter().find(|v| !v.is_null()))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// The schema's type, lower-cased; for a list of types, the first that is not `null`.
fn type_of(schema: &Value) -> Option<String> {
    match schema.get("type")? {
        Value::String(t) => Some(t.to_lowercase()),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .or_else(|| types.first().and_then(Value::as_str))
            .map(str::to_lowercase),
        _ => None,
    }
}

fn format_of(schema: &Value) -> Option<&str> {
    schema.get("format").and_then(Value::as_str)
}

/// The product name a prompt is about.
fn product_name_in(prompt: &str) -> String {
    for line in prompt.lines() {
        let trimmed = line.trim();
        for label in ["Product name:", "Product:"] {
            if let Some(rest) = trimmed.strip_prefix(label) {
                let rest = rest.trim().trim_matches(|c| c == '"' || c == '\'');
                if !rest.is_empty() {
                    return rest.to_owned();
                }
            }
        }
    }
    for (open, close) in [('"', '"'), ('“', '”'), ('\'', '\'')] {
        if let Some(start) = prompt.find(open) {
            let rest = &prompt[start + open.len_utf8()..];
            if let Some(end) = rest.find(close) {
                if end > 1 {
                    return rest[..end].to_owned();
                }
            }
        }
    }
    prompt
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(120)
        .collect()
}

/// Collapses whitespace and capitalises all-lower-case words.
fn standardise(raw: &str) -> String {
    raw.split_whitespace()
        .map(|word| {
            if word.chars().all(|c| !c.is_uppercase())
                && word.chars().next().is_some_and(char::is_alphabetic)
            {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Specs from tokens like `16GB`, `28cm`, `27-inch`, `2.4GHz`.
fn specs_in(name: &str) -> Map<String, Value> {
    let mut specs = Map::new();
    for token in name.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')') {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '.');
        let digits: String = token
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if digits.is_empty() || digits == token {
            continue;
        }
        let unit = token[digits.len()..].trim_start_matches('-').to_lowercase();
        let key = match unit.as_str() {
            "gb" | "tb" | "mb" => "capacity",
            "cm" | "mm" | "m" | "in" | "inch" | "\"" => "size",
            "ghz" | "mhz" => "clock_speed",
            "w" => "power",
            "l" | "ml" => "volume",
            "kg" | "g" | "lb" | "lbs" => "weight",
            "mp" => "resolution",
            "hz" => "refresh_rate",
            _ => continue,
        };
        specs.insert(
            key.to_owned(),
            json!(format!(
                "{digits} {}",
                unit.to_uppercase().replace("INCH", "in")
            )),
        );
    }
    specs
}

/// FNV-1a: a stable, dependency-free hash (the same on every machine and run).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_comes_from_the_prompt() {
        let p = Product::from_prompt(
            "Enrich this product.\nProduct name: dell xps 13 laptop 16GB\nCategory: hardware",
        );
        assert_eq!(p.name, "Dell Xps 13 Laptop 16GB");
        assert_eq!(p.vendor, "Dell");
        assert_eq!(p.category, "Laptops");
        assert_eq!(p.specs["capacity"], "16 GB");
        let quoted = Product::from_prompt(
            "Extract brand from: 'Acme 28cm non-stick frying pan, induction ready'.",
        );
        assert_eq!(quoted.vendor, "Acme");
        assert_eq!(quoted.category, "Kitchen > Cookware");
    }

    #[test]
    fn filled_values_conform_to_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "price": {"type": ["number", "null"], "minimum": 0},
                "pricing_type": {"anyOf": [{"type": "string", "enum": ["one_time", "monthly", "yearly", "usage_based"]}, {"type": "null"}]},
                "confidence": {"type": "string", "enum": ["high", "medium", "low"]},
                "metadata": {"type": "object"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "count": {"$ref": "#/$defs/count"}
            },
            "required": ["name"],
            "$defs": {"count": {"type": "integer"}}
        });
        let value = fill(&schema, &Product::from_name("Slack Pro subscription"));
        assert_eq!(value["name"], "Slack Pro Subscription");
        assert!(value["price"].as_f64().unwrap() > 0.0);
        assert_eq!(value["pricing_type"], "monthly");
        assert_eq!(value["confidence"], "high");
        assert_eq!(value["metadata"]["brand"], "Slack");
        assert_eq!(value["tags"].as_array().unwrap().len(), 2);
        assert!(value["count"].is_i64());
    }

    #[test]
    fn gemini_schema_types_are_upper_case() {
        let schema = json!({"type": "OBJECT", "properties": {"brand": {"type": "STRING"}, "tags": {"type": "ARRAY", "items": {"type": "STRING"}}}});
        let value = fill(&schema, &Product::from_name("Logitech MX Keys keyboard"));
        assert_eq!(value["brand"], "Logitech");
        assert!(value["tags"].is_array());
    }
}
