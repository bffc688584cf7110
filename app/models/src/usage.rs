//! The usage report of `GET /server/manage/usage`: the ledger folded on the server into totals
//! per cartridge, host and user over a range, for the admin Usage screen and for scripts. The
//! browser never reads the raw ledger.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::protocol::User;

/// The longest range a report covers.
pub const MAX_USAGE_DAYS: i64 = 400;
/// The longest range a report by the hour covers.
pub const MAX_USAGE_HOURLY_DAYS: i64 = 62;
/// How many hosts and how many users a report lists, the busiest first.
pub const USAGE_TOP: usize = 10;

/// The length of a report's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageStep {
    Hour,
    Day,
}

impl UsageStep {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }
}

/// What `GET /server/manage/usage` reports on. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default, deny_unknown_fields)]
pub struct UsageQuery {
    /// The start: RFC 3339, or a day (`2026-11-01`, midnight at `utc_offset`). Default: 7 days
    /// before `to`. Rounded down to the start of its hour (or day, by the day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 64,
            pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        )
    )]
    pub from: Option<String>,
    /// The end (excluded), in the same forms. Default: now. At most 400 days after `from`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 64,
            pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        )
    )]
    pub to: Option<String>,
    /// The buckets: `hour` (for at most 62 days) or `day`. Default: by the hour up to 7 days,
    /// by the day beyond. Always `day` with a host or a user, which are totalled by the day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<UsageStep>,
    /// The offset from UTC, in minutes, of the days (and of a `from` or `to` given as a day):
    /// the viewer's time zone. Default 0; -840 to 840.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = -840, maximum = 840))]
    pub utc_offset: Option<i32>,
    /// Only this pool; empty for the default pool. Default: every pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 64))]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(value_type = Option<u64>, minimum = 0, maximum = 4_294_967_295_u64)
    )]
    pub product_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(value_type = Option<u64>, minimum = 0, maximum = 4_294_967_295_u64)
    )]
    pub major_version: Option<u32>,
    /// Only sessions of this host (not with `realm` or `principal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 255))]
    pub host: Option<String>,
    /// Only sessions of users of this realm (with `principal`: of this user).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 64))]
    pub realm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 256))]
    pub principal: Option<String>,
}

/// Answer of `GET /server/manage/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    /// The start of the first bucket.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// The end of the last bucket.
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub step: UsageStep,
    /// How many buckets: every series has this many values, bucket `i` starting at
    /// `from + i × step`.
    pub buckets: u32,
    /// The time of the last ledger entry the figures include (licenses still held are counted
    /// up to the time of the report); absent while the ledger is empty.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub through: Option<OffsetDateTime>,
    /// False while the server is still reading an old ledger for the first time: the figures
    /// cover the entries read so far.
    pub complete: bool,
    /// The cartridges used or refused in the range, by pool, product and version.
    pub cartridges: Vec<UsageCartridge>,
    /// Refusals in the range by reason, most first; `reason` is empty for entries written
    /// before refusals said why.
    pub refusals: Vec<UsageRefusals>,
    /// The busiest hosts (by license time), at most 10, counting the whole UTC days the range
    /// touches; none in a report on a user.
    pub hosts: Vec<UsageParty>,
    /// How many hosts held a license in the range.
    pub hosts_total: u64,
    /// The busiest users, at most 10, likewise; a session without a user counts as `user`
    /// absent. None in a report on a host.
    pub users: Vec<UsageParty>,
    pub users_total: u64,
}

/// One cartridge's use over the range, with its series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageCartridge {
    /// Absent: the default pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub product_id: u32,
    pub major_version: u32,
    /// The product's name, or `product N` when no license names it any more.
    pub product: String,
    /// The seats its licenses allow now; absent when it is no longer installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runcount: Option<u32>,
    pub grants: u64,
    /// The most licenses held at once in the range; absent for a report on a host or user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<u32>,
    /// License time in the range, in seconds (a license held for an hour is 3,600).
    pub held_seconds: u64,
    pub credits_used: u64,
    pub refusals: u64,
    /// The prepaid credits left now; absent for a cartridge without credits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_left: Option<i64>,
    /// Credits used per day over the range (to now, if the range ends later).
    pub credits_per_day: u64,
    /// How many days `credits_left` lasts at `credits_per_day`; absent without credits or use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<u64>,
    pub series: UsageSeries,
}

/// A cartridge's figures per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageSeries {
    /// The most licenses held at once in each bucket; absent for a report on a host or user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<Vec<u32>>,
    /// License time in each bucket, in seconds: divided by the bucket's length, the average
    /// number of licenses held.
    pub held_seconds: Vec<u64>,
    pub grants: Vec<u64>,
    pub credits: Vec<u64>,
    pub refusals: Vec<u64>,
}

/// Refusals for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageRefusals {
    /// A `RefusalReason` (`no_seat_free`, `user_limit`, …), or empty.
    pub reason: String,
    pub refusals: u64,
}

/// A host's or a user's use over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageParty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    pub grants: u64,
    pub held_seconds: u64,
    pub credits_used: u64,
}
