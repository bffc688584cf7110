//! `GET /status/data.json`: the document the status page is built from, and that monitoring
//! scripts poll. Contract: `shared/spec/status.md`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The whole status document. The three arrays are always present, even when empty, so that a
/// script can index them without checking.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusData {
    pub cartridges: Vec<Cartridge>,
    pub sessions: Vec<Session>,
    pub servers: Vec<Server>,
}

/// Licenses for one `(product_id, major_version)`, summed over every location that holds some.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cartridge {
    pub product_id: u32,
    /// 0 = any version.
    pub major_version: u32,
    pub product: String,
    /// Concurrent processes allowed; 0 = none.
    pub runcount: u32,
    /// Credits loaded; one credit = one second of processing.
    pub credits: i64,
    /// Credits may be consumed beyond what is loaded and are billed afterwards.
    pub postpay: bool,
    pub statistic: CartridgeStatistic,
    pub locations: Vec<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartridgeStatistic {
    pub licenses: LicenseCounts,
    pub used_credits: i64,
    /// `credits - used_credits`. Signed: a job already running on a prepaid cartridge is charged
    /// in full, and a postpay cartridge keeps granting, so this can go below zero.
    pub remaining_credits: i64,
    pub runcount_in_use: u32,
    pub sessions_dropped: u64,
}

/// Grant counters since installation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenseCounts {
    pub runcount: u64,
    pub credits: u64,
    pub failed: u64,
    /// `failed` by why; refusals recorded before reasons were (older ledgers) count in `failed`
    /// only. Left out while all are zero, as the contract's example has it.
    #[serde(default, skip_serializing_if = "FailedByReason::is_zero")]
    pub failed_by_reason: FailedByReason,
}

/// Why a license request was refused, as the ledger's `license_refused` entries say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Every seat of the cartridges that could answer was taken.
    NoSeatFree,
    /// The request waited for a seat as long as it asked (`wait_s`), and none came free.
    WaitedOut,
    /// No cartridge of the product in the session's pool, nor in any other.
    UnknownProduct,
    /// The product has cartridges in other pools, not in the session's.
    WrongPool,
    /// The product has cartridges, but none covers the requested major version.
    NoVersion,
    /// Only prepaid credits could answer, and they are used up.
    CreditsExhausted,
    /// A new `user` beyond the license's `max_users`: the session was not opened.
    UserLimit,
}

impl RefusalReason {
    pub const ALL: [Self; 7] = [
        Self::NoSeatFree,
        Self::WaitedOut,
        Self::UnknownProduct,
        Self::WrongPool,
        Self::NoVersion,
        Self::CreditsExhausted,
        Self::UserLimit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSeatFree => "no_seat_free",
            Self::WaitedOut => "waited_out",
            Self::UnknownProduct => "unknown_product",
            Self::WrongPool => "wrong_pool",
            Self::NoVersion => "no_version",
            Self::CreditsExhausted => "credits_exhausted",
            Self::UserLimit => "user_limit",
        }
    }
}

/// Refusals of a cartridge by reason (the reasons a cartridge that exists can be refused for).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct FailedByReason {
    pub no_seat_free: u64,
    pub waited_out: u64,
    pub credits_exhausted: u64,
}

impl FailedByReason {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// Where a part of a cartridge physically lives (which server, which serial).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    pub server_id: String,
    /// The cartridge's serial. An integer here, unlike [`Server::serial_number`].
    pub serial_number: u64,
    pub runcount: u32,
    pub credits: i64,
    pub postpay: bool,
    /// When this location's license stops granting; absent: never.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires: Option<time::OffsetDateTime>,
}

impl Cartridge {
    /// When the first of its licenses stops granting (the cartridge shrinks then); `None`: none
    /// ever does.
    pub fn expires(&self) -> Option<time::OffsetDateTime> {
        self.locations.iter().filter_map(|l| l.expires).min()
    }
}

/// One client process that opened a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub server_id: String,
    /// Unique and increasing, so "newest first" is a sort on this field.
    pub session_id: u64,
    pub status: SessionStatus,
    /// Host name as the client reports it.
    pub host: String,
    /// Client address as the server sees it (which may be a NAT gateway).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "192.0.2.10"))]
    pub ip_address: IpAddr,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub message: String,
    /// The licenses it holds now (none once it ended).
    pub licenses: Vec<HeldLicense>,
    /// Every product it was granted in its life, once each: for an ended session, what it used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<HeldLicense>,
    /// Who it runs for, when the vendor's program named someone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::protocol::User>,
    /// When it ended (RFC 3339); absent while it runs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub ended: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Running,
    /// Closed by the client.
    Finished,
    /// Heartbeats stopped, or an administrator released it; its licenses went back to the
    /// cartridges.
    Dropped,
}

/// A license a session holds right now.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldLicense {
    pub product_id: u32,
    pub major_version: u32,
    pub product: String,
    #[serde(rename = "type")]
    pub license_type: LicenseType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LicenseType {
    Runcount,
    Credits,
}

/// One member of the failover network; a single server lists only itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Server {
    /// Uppercase hex, generated at first start and kept in the data directory.
    pub server_id: String,
    pub status: ServerStatus,
    /// The server's own license serial, shared by the members of one failover network. A string,
    /// unlike [`Location::serial_number`].
    pub serial_number: String,
    pub version: String,
    pub hostname: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "192.0.2.10"))]
    pub ip_address: IpAddr,
    /// Its license port (not the API port).
    pub port: u16,
    /// OS name and version, architecture, kernel.
    pub platform: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// Present only on the member that answered: the `server_id` of the current coordinator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
    /// `sealed` (trusts only the vendor keys compiled into it) or `development` (trusts keys given
    /// at run time: not for production). Absent for a member that did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Present when this server's data directory was found on another machine: it got a new
    /// `server_id`, and licenses bound to the previous one stop granting at `licenses_stop_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<ServerMoved>,
}

/// A data directory that moved to another machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerMoved {
    pub previous_server_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub moved_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub licenses_stop_at: OffsetDateTime,
}

/// How a server binary decides which vendor keys to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// The vendor's keys are compiled in; run-time keys are refused.
    Sealed,
    /// Run-time keys (`--vendor-public-key`): for tests and demonstrations.
    Development,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ServerStatus {
    Running,
    /// A member that stopped answering.
    Unreachable,
}

impl Server {
    /// Whether this member is the coordinator according to the member that answered.
    pub fn is_coordinator(&self, coordinator: Option<&str>) -> bool {
        coordinator == Some(self.server_id.as_str())
    }
}

impl StatusData {
    /// The coordinator's id, as told by the member that answered (the one carrying the field).
    pub fn coordinator(&self) -> Option<&str> {
        self.servers.iter().find_map(|s| s.coordinator.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the contract must parse, and serialise back to the same JSON: this is what
    /// keeps field names and types binding.
    #[test]
    fn spec_example_round_trips() {
        let text = include_str!("../testdata/status-data.example.json");
        let parsed: StatusData = serde_json::from_str(text).expect("spec example parses");
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        let again = serde_json::to_value(&parsed).unwrap();
        assert_eq!(normalise_times(original), normalise_times(again));

        assert_eq!(parsed.cartridges.len(), 2);
        assert_eq!(parsed.cartridges[1].statistic.runcount_in_use, 3);
        assert_eq!(
            parsed.sessions[1].licenses[0].license_type,
            LicenseType::Runcount
        );
        assert_eq!(parsed.sessions[0].status, SessionStatus::Finished);
        let coordinator = parsed.coordinator();
        assert!(parsed.servers[0].is_coordinator(coordinator));
        assert!(!parsed.servers[1].is_coordinator(coordinator));
    }

    /// `time` writes `+02:00` offsets back as they came, but a trailing `Z` and `+00:00` are the
    /// same instant; compare instants, not spellings.
    fn normalise_times(mut v: serde_json::Value) -> serde_json::Value {
        fn walk(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map.iter_mut() {
                        if k == "started" {
                            let s = v.as_str().expect("started is a string");
                            let t = OffsetDateTime::parse(
                                s,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .expect("started is RFC 3339");
                            *v = serde_json::Value::from(t.unix_timestamp());
                        } else {
                            walk(v);
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    }

    #[test]
    fn coordinator_is_omitted_when_absent() {
        let server = Server {
            server_id: "AB".into(),
            status: ServerStatus::Unreachable,
            serial_number: "1".into(),
            version: "1.0.0".into(),
            hostname: "h".into(),
            ip_address: [127, 0, 0, 1].into(),
            port: 1400,
            platform: "p".into(),
            started: OffsetDateTime::UNIX_EPOCH,
            coordinator: None,
            build: None,
            moved: None,
        };
        let json = serde_json::to_value(&server).unwrap();
        assert!(json.get("coordinator").is_none());
        assert!(json.get("build").is_none());
        let sealed = Server {
            build: Some(Build::Sealed),
            ..server
        };
        assert_eq!(serde_json::to_value(&sealed).unwrap()["build"], "sealed");
        assert_eq!(json["status"], "unreachable");
        assert_eq!(json["started"], "1970-01-01T00:00:00Z");
    }
}
