//! Times as text: RFC 3339, the one format the store, the ledger, the files and the API use.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// `2026-11-22T10:00:00Z`; nanoseconds only when the time has them.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// The inverse of [`rfc3339`].
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &Rfc3339)
}
