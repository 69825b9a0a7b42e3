//! The catalog's vocabulary, free of HTTP and of any one database or model
//! API: the enumerations (item status, pricing type, confidence, role, task
//! type, the workflow's statuses and proposal types) each with its one list
//! of values, the validated values requests are parsed into, and the items,
//! requests, proposals and audit events: each one type, decoded from its
//! row and answered as the response body.
//!
//! Parse, don't validate: a request type made of these fields cannot hold a
//! blank name, an overlong text or an unknown status, and each type states
//! its own limits in the OpenAPI document, so the two cannot drift apart.

mod cursor;
mod id;
mod import;
mod item;
mod list;
mod number;
mod procurement;
mod search_result;
mod text;
mod timestamp;
mod vocabulary;

pub use cursor::{Page, PageCursor, PageRequest};
pub use id::Id;
pub use import::{ImportJob, ImportOptions, RowError};
pub use item::{CatalogItem, ItemDraft, Metadata, OptionalProductUrl, ProductUrl, SearchHit};
pub use list::TextList;
pub use number::{Count, Price, Threshold};
pub use procurement::{
    AuditEvent, AuditFilter, Proposal, ProposalDraft, Record, Request, RequestFilter,
    WorkflowRecord,
};
pub use search_result::SearchResults;
pub use text::{OptionalText, Text, TextRefusal};
pub(crate) use text::{free_text, free_text_schema, printable_pattern};
pub use timestamp::Timestamp;
pub(crate) use vocabulary::enum_schema;
/// A row that lists newest first: its place in that order, `(created_at,
/// id)`, which is what a page's cursor records.
pub trait Listed {
    /// `created_at` as stored, and the id that breaks ties.
    fn page_key(&self) -> (&str, uuid::Uuid);
}

macro_rules! listed {
    ($($entity:ty),*) => {$(
        impl Listed for $entity {
            fn page_key(&self) -> (&str, uuid::Uuid) {
                (self.created_at.as_str(), self.id)
            }
        }
    )*};
}
listed!(CatalogItem, Request, Proposal, AuditEvent, ImportJob);

/// A user's place in an organisation: the org and their role in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The organisation.
    pub org_id: uuid::Uuid,
    /// The member's role in it.
    pub role: Role,
}

pub use vocabulary::{
    Confidence, ImportEnrichment, ImportFormat, ImportMode, ImportStatus, ItemStatus, PricingType,
    ProposalStatus, ProposalType, RequestStatus, ReviewDecision, Role, TaskType,
};
