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
    /// Free text: session id, host, message, user or product contains this (what the table
    /// shows). At most 256 characters.
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
    /// The parameters that the server parses back into this query, unencoded; defaults and
    /// empty filters are left out so addresses stay short.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let default = Self::default();
        let mut params = Vec::new();
        if self.offset != 0 {
            params.push(("offset", self.offset.to_string()));
        }
        if self.limit != default.limit {
            params.push(("limit", self.limit.to_string()));
        }
        if self.sort != default.sort {
            params.push(("sort", self.sort.as_str().to_owned()));
        }
        if self.order != default.order {
            params.push(("order", self.order.as_str().to_owned()));
        }
        if let Some(status) = self.status {
            params.push(("status", status.as_str().to_owned()));
        }
        for (name, value) in [
            ("host", &self.host),
            ("product", &self.product),
            ("q", &self.q),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                params.push((name, value.to_owned()));
            }
        }
        params
    }

    /// [`Self::params`] as a query string (without `?`), each value passed through `encode`.
    pub fn to_query_string(&self, encode: impl Fn(&str) -> String) -> String {
        self.params()
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The query an address's parameters describe (`get` reads one by name), as
    /// [`Self::to_query_string`] writes them. What is missing or not understood keeps its default,
    /// so an old or hand-edited link still opens; `status=all` is no status filter.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let default = Self::default();
        let text = |name: &str| {
            get(name)
                .filter(|v| !v.is_empty())
                .map(|v| v.chars().take(MAX_FILTER).collect())
        };
        Self {
            offset: get("offset")
                .and_then(|v| v.parse().ok())
                .filter(|o| i64::try_from(*o).is_ok())
                .unwrap_or(0),
            limit: get("limit")
                .and_then(|v| v.parse().ok())
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .unwrap_or(default.limit),
            sort: get("sort")
                .and_then(|v| SessionSort::parse(&v))
                .unwrap_or_default(),
            order: get("order")
                .and_then(|v| SortOrder::parse(&v))
                .unwrap_or_default(),
            status: get("status").and_then(|v| SessionStatus::parse(&v)),
            host: text("host"),
            product: text("product"),
            q: text("q"),
        }
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
    pub const ALL: [Self; 5] = [
        Self::SessionId,
        Self::Status,
        Self::Host,
        Self::Product,
        Self::Started,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

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
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Asc, Self::Desc]
            .into_iter()
            .find(|o| o.as_str() == name)
    }

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
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Running, Self::Finished, Self::Dropped]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

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

/// `GET /status/history.json`: how busy each cartridge of the pool was lately: the last
/// [`HISTORY_HOURS`] hours by the hour, from the ledger (so they survive a restart), and the last
/// hour sampled every `interval_s` since the server started.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    /// Seconds between two samples; the last sample of each cartridge is taken at the request.
    pub interval_s: u32,
    /// How far back the samples go, in seconds.
    pub span_s: u32,
    /// The start of the first hour of `peak` and `credits` (UTC, on the hour); the last one is
    /// the hour under way.
    #[serde(with = "time::serde::rfc3339")]
    pub hours_from: OffsetDateTime,
    pub cartridges: Vec<CartridgeHistory>,
}

/// How many hours [`History`] goes back, the hour under way included.
pub const HISTORY_HOURS: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartridgeHistory {
    pub product_id: u32,
    pub major_version: u32,
    /// Oldest first.
    pub samples: Vec<Sample>,
    /// Per hour from `hours_from` ([`HISTORY_HOURS`] of them): the most licenses held at once.
    pub peak: Vec<u32>,
    /// Per hour: the credits debited (at the release of each credit license).
    pub credits: Vec<u64>,
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
        // And an address's parameters (the table keeps its query in the page's address).
        let params: std::collections::HashMap<&str, &str> = text
            .split('&')
            .map(|pair| pair.split_once('=').unwrap())
            .collect();
        let read = SessionQuery::from_params(|k| params.get(k).map(|v| (*v).to_owned()));
        assert_eq!(read, query);
    }

    #[test]
    fn parameters_that_are_not_understood_keep_their_defaults() {
        let params = [
            ("offset", "-3"),
            ("limit", "9999"),
            ("sort", "price"),
            ("order", "up"),
            ("status", "all"),
            ("host", ""),
        ];
        let read = SessionQuery::from_params(|k| {
            params
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(read, SessionQuery::default());
    }
}
