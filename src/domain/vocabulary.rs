//! The enumerations, each declared once with its wire spelling: the
//! `string_enum!` macro gives it `ALL`, `as_str`, serde in that spelling (with
//! the original's "must be one of ..." refusal), and its OpenAPI schema.

use std::borrow::Cow;

/// "a or b", "one of a, b, c": the allowed values, as error messages say them.
pub(crate) fn one_of(values: &[&str]) -> String {
    match values {
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", values.join(", ")),
    }
}

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Every value as written, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as it is written on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// The value written exactly as [`Self::as_str`] writes it.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// The schema of a list's `?status=`-like filter: a value, or
            /// empty for every value.
            pub fn filter_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::domain::vocabulary::enum_schema(Self::NAMES.iter().copied().chain([""]))
            }

            /// "must be a or b" / "must be one of a, b, c".
            pub fn expected() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("must be {}", $crate::domain::vocabulary::one_of(&names))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s).ok_or_else(Self::expected)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).ok_or_else(|| E::custom($name::expected()))
                    }
                }
                d.deserialize_str(Visitor)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::domain::vocabulary::enum_schema(Self::ALL.iter().map(|v| v.as_str()))
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

/// A string schema allowing exactly `values`.
pub(crate) fn enum_schema<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
        .into()
}

string_enum! {
    /// Whether an item is offered (`active`) or retired (`deprecated`).
    pub enum ItemStatus {
        /// Offered; found by search.
        Active = "active",
        /// Retired, perhaps with a replacement; kept for history.
        Deprecated = "deprecated",
    }
}

string_enum! {
    /// How an item's price is charged.
    pub enum PricingType {
        /// Once.
        OneTime = "one_time",
        /// Every month.
        Monthly = "monthly",
        /// Every year.
        Yearly = "yearly",
        /// By use.
        UsageBased = "usage_based",
    }
}

string_enum! {
    /// How sure the model is that it knows this exact product.
    pub enum Confidence {
        /// It recognises the exact product.
        High = "high",
        /// It knows the kind of product.
        Medium = "medium",
        /// A guess.
        Low = "low",
    }
}

string_enum! {
    /// A member's role in their organisation (`org_memberships.role`).
    pub enum Role {
        /// Searches and requests items.
        Requester = "requester",
        /// Reviews requests and proposals.
        Reviewer = "reviewer",
        /// Manages the catalog.
        Admin = "admin",
    }
}

string_enum! {
    /// How an embedding will be used; Gemini tunes the vector to it.
    pub enum TaskType {
        /// Text stored to be found (catalog items).
        RetrievalDocument = "RETRIEVAL_DOCUMENT",
        /// A search query.
        RetrievalQuery = "RETRIEVAL_QUERY",
        /// Comparing texts with each other.
        SemanticSimilarity = "SEMANTIC_SIMILARITY",
        /// Classification features.
        Classification = "CLASSIFICATION",
        /// Clustering features.
        Clustering = "CLUSTERING",
    }
}

string_enum! {
    /// Where a request stands.
    pub enum RequestStatus {
        /// Waiting for a reviewer.
        Pending = "pending",
        /// Approved (perhaps with a proposal).
        Approved = "approved",
        /// Turned down.
        Rejected = "rejected",
    }
}

string_enum! {
    /// A reviewer's decision on a request.
    pub enum ReviewDecision {
        /// Approve the request.
        Approved = "approved",
        /// Turn it down.
        Rejected = "rejected",
    }
}

string_enum! {
    /// Where a proposal stands. `approved` is allowed by the original's
    /// schema but never written: approving merges.
    pub enum ProposalStatus {
        /// Waiting for a reviewer.
        Pending = "pending",
        /// Never written; kept so every stored value reads.
        Approved = "approved",
        /// Turned down.
        Rejected = "rejected",
        /// Approved and merged into the catalog.
        Merged = "merged",
    }
}

string_enum! {
    /// What a proposal would do to the catalog.
    pub enum ProposalType {
        /// Add a new item.
        AddItem = "ADD_ITEM",
        /// Add a new item and deprecate the one it replaces.
        ReplaceItem = "REPLACE_ITEM",
        /// Deprecate an item.
        DeprecateItem = "DEPRECATE_ITEM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_refusals_list_them() {
        for status in ItemStatus::ALL {
            assert_eq!(ItemStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(ItemStatus::expected(), "must be active or deprecated");
        assert_eq!(
            PricingType::expected(),
            "must be one of one_time, monthly, yearly, usage_based"
        );
        let refused = serde_json::from_str::<Role>("\"owner\"").unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("must be one of requester, reviewer, admin")
        );
        assert_eq!(
            serde_json::to_string(&PricingType::OneTime).unwrap(),
            "\"one_time\""
        );
    }
}

string_enum! {
    /// The kind of file a bulk import reads.
    pub enum ImportFormat {
        /// Comma-separated values with a header row (`text/csv`).
        Csv = "csv",
        /// One JSON object per line (`application/x-ndjson`).
        Ndjson = "ndjson",
    }
}

string_enum! {
    /// Where a bulk import stands.
    pub enum ImportStatus {
        /// Its file is still arriving.
        Receiving = "receiving",
        /// Waiting for a replica (or for the org's earlier import) to take it.
        Queued = "queued",
        /// A replica is applying it, a chunk at a time.
        Running = "running",
        /// A dependency is down; the replica holding it tries again.
        Paused = "paused",
        /// Every row was applied or refused.
        Completed = "completed",
    }
}

string_enum! {
    /// What a bulk import's rows do.
    pub enum ImportMode {
        /// They create and update items.
        Items = "items",
        /// They become pending proposals (ADD_ITEM, REPLACE_ITEM,
        /// DEPRECATE_ITEM) for a reviewer to approve.
        Proposals = "proposals",
    }
}

string_enum! {
    /// What Gemini fills in during a bulk import.
    pub enum ImportEnrichment {
        /// What a row that creates an item leaves empty.
        Missing = "missing",
    }
}
