//! What the status page asks for beyond `data.json`: one page of the sessions table (sorted and
//! filtered by the server, so 100,000 sessions never cross the wire at once) and the recent history
//! of each cartridge, for its chart.
//!
//! `data.json` stays the whole document that scripts read; these are the page's cheaper views.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Session, SessionStatus};

/// The most sessions one page may hold.
pub const MAX_PAGE: u32 = 500;
/// Longest text filter (`host`, `product`, `q`) of a sessions query, in characters.
pub const MAX_FILTER: usize = 256;

/// `GET /status/sessions.json?...`: every field is optional in the query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default, deny_unknown_fields)]
pub struct SessionQuery {
    /// Sessions to skip, after filtering and sorting; at most 2^63 - 1.
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)
    )]
    pub offset: u64,
    /// Page size, 1 to 500.
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: u32,
    pub sort: SessionSort,
    pub order: SortOrder,
    /// Only sessions in this state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SessionStatus>,
    /// Host name contains this (case-insensitive). At most 256 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 256))]
    pub host: Option<String>,
    /// A held license's product name contains this, or its product id is this number. At most
    /// 256 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 256))]
    pub product: Option<String>,
    /// Free text: session id, host, address, message or product contains this. At most 256
    /// characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 256))]
    pub q: Option<String>,
}

impl Default for SessionQuery {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: 50,
            sort: SessionSort::default(),
            order: SortOrder::default(),
            status: None,
            host: None,
            product: None,
            q: None,
        }
    }
}

impl SessionQuery {
    /// The query string (without `?`) that the server parses back into this query; defaults and
    /// empty filters are left out so addresses stay short.
    pub fn to_query_string(&self, encode: impl Fn(&str) -> String) -> String {
        let default = Self::default();
        let mut parts = Vec::new();
        if self.offset != 0 {
            parts.push(format!("offset={}", self.offset));
        }
        if self.limit != default.limit {
            parts.push(format!("limit={}", self.limit));
        }
        if self.sort != default.sort {
            parts.push(format!("sort={}", self.sort.as_str()));
        }
        if self.order != default.order {
            parts.push(format!("order={}", self.order.as_str()));
        }
        if let Some(status) = self.status {
            parts.push(format!("status={}", status.as_str()));
        }
        for (name, value) in [
            ("host", &self.host),
            ("product", &self.product),
            ("q", &self.q),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        parts.join("&")
    }
}

/// The column a sessions page is sorted by. Ties are broken by session id, so paging is stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionSort {
    /// Session ids increase, so this is also the order in which sessions started.
    #[default]
    SessionId,
    Status,
    Host,
    /// The first held license's product name.
    Product,
    Started,
}

impl SessionSort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionId => "session_id",
            Self::Status => "status",
            Self::Host => "host",
            Self::Product => "product",
            Self::Started => "started",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    /// Newest first, for the default sort.
    #[default]
    Desc,
}

impl SortOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }

    pub fn flipped(self) -> Self {
        match self {
            Self::Asc => Self::Desc,
            Self::Desc => Self::Asc,
        }
    }
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Dropped => "dropped",
        }
    }
}

/// One page of the pool's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionPage {
    /// Sessions of the pool, before filtering.
    pub total: u64,
    /// Sessions that pass the filters; the page is a slice of these.
    pub matched: u64,
    pub offset: u64,
    pub sessions: Vec<Session>,
}

/// `GET /status/history.json`: how busy each cartridge of the pool was lately.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    /// Seconds between two samples; the last sample of each cartridge is taken at the request.
    pub interval_s: u32,
    /// How far back the samples go, in seconds.
    pub span_s: u32,
    pub cartridges: Vec<CartridgeHistory>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartridgeHistory {
    pub product_id: u32,
    pub major_version: u32,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sample {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub runcount_in_use: u32,
    /// Credits used since installation (as `statistic.used_credits`): the difference between two
    /// samples is what was used in between.
    pub used_credits: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_query_is_an_empty_query_string() {
        assert_eq!(SessionQuery::default().to_query_string(str::to_owned), "");
    }

    #[test]
    fn a_query_string_round_trips_through_serde() {
        let query = SessionQuery {
            offset: 100,
            limit: 25,
            sort: SessionSort::Host,
            order: SortOrder::Asc,
            status: Some(SessionStatus::Dropped),
            host: Some("build-7".into()),
            product: Some("pdfToolbox".into()),
            q: Some("nightly".into()),
        };
        let text = query.to_query_string(str::to_owned);
        assert_eq!(
            text,
            "offset=100&limit=25&sort=host&order=asc&status=dropped&host=build-7&product=pdfToolbox&q=nightly"
        );
        // The server reads a query string as a map of strings; serde must take every field back.
        let map: serde_json::Map<String, serde_json::Value> = text
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                let v = v
                    .parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| v.into());
                (k.to_owned(), v)
            })
            .collect();
        let back: SessionQuery = serde_json::from_value(map.into()).unwrap();
        assert_eq!(back, query);
    }
}
