//! The ledger for people and spreadsheets: CSV (one row per entry, and one per license a
//! `session_closed` entry released) or JSON lines, as `ledger export` and the admin API's download
//! write them, e.g. for billing postpay usage.
//!
//! An [`Export`] reads the ledger a batch at a time and turns each batch into bytes, so an export
//! streams: the whole ledger is never in memory, only the grants still held (a release row names
//! the product of its grant, which came earlier).

use std::{collections::HashMap, io::Write};

use models::LicenseType;
use serde_json::json;
use time::OffsetDateTime;

use super::{
    event::Event,
    verify::{Entry, Walk},
};
use crate::{store::Store, sys::timestamp::rfc3339};

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

/// Which entries an export takes: `since` ≤ time < `until`, and, when `kinds` is not empty, of
/// those kinds. For CSV the kind is the row's (a `session_closed` entry's releases are
/// `license_released` rows), for JSON lines the entry's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub kinds: Vec<String>,
}

impl Filter {
    fn in_range(&self, at: OffsetDateTime) -> bool {
        self.since.is_none_or(|since| at >= since) && self.until.is_none_or(|until| at < until)
    }

    fn takes_kind(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }
}

/// The kinds an export can be filtered by: every entry's, and `license_released` rows.
pub const KINDS: [&str; 13] = [
    "session_opened",
    "session_refused",
    "license_granted",
    "license_refused",
    "license_released",
    "session_closed",
    "license_installed",
    "license_removed",
    "server_moved",
    "cartridge_assigned",
    "admin_user_changed",
    "licensed_users_cleared",
    "network_changed",
];

/// `--since` / `--until`: RFC 3339 (`2026-11-01T00:00:00Z`) or a day (`2026-11-01`, midnight
/// UTC).
pub fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    // The shape first (`DDDD-DD-DD`, then `T` and a time), as the OpenAPI document's pattern
    // says: the parsers below would also take a sign or a longer year.
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let shaped = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && (b.len() == 10 || matches!(b.get(10), Some(b'T' | b't')));
    if !shaped {
        return Err(format!(
            "{text:?} is not a time: give RFC 3339 (2026-11-01T00:00:00Z) or a day (2026-11-01)"
        ));
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &day) {
        return Ok(date.midnight().assume_utc());
    }
    crate::sys::timestamp::parse_rfc3339(text).map_err(|_| {
        format!(
            "{text:?} is not a time: give RFC 3339 (2026-11-01T00:00:00Z) or a day (2026-11-01)"
        )
    })
}

/// `--kind`: one or more kinds, comma-separated, each one of [`KINDS`].
pub fn parse_kinds(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(|kind| {
            if KINDS.contains(&kind) {
                Ok(kind.to_owned())
            } else {
                Err(format!(
                    "{kind:?} is not a kind of ledger entry; one of: {}",
                    KINDS.join(", ")
                ))
            }
        })
        .collect()
}

/// The export of the ledger in a store, from its first entry, each checked on the way.
#[derive(Debug)]
pub struct Export<'a> {
    walk: Walk<'a>,
    exporter: Exporter,
    header_written: bool,
}

impl<'a> Export<'a> {
    pub fn new(store: &'a Store, format: Format, filter: Filter) -> Self {
        Self {
            walk: Walk::from_genesis(store),
            exporter: Exporter::new(format, filter),
            header_written: false,
        }
    }

    /// The bytes of the next batch of entries (the first comes with the header); `None` at the
    /// end. An error names the first entry that does not check out.
    pub async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut chunk = Vec::new();
        if !self.header_written {
            self.exporter.header(&mut chunk);
            self.header_written = true;
        }
        match self.walk.next_batch().await? {
            Some(entries) => {
                for entry in &entries {
                    self.exporter.entry(entry, &mut chunk);
                }
                Ok(Some(chunk))
            }
            // An empty ledger still has its header.
            None => Ok((!chunk.is_empty()).then_some(chunk)),
        }
    }
}

/// Writes entries, in ledger order, as `format` (after the header, for CSV).
#[derive(Debug)]
struct Exporter {
    format: Format,
    filter: Filter,
    csv: Csv,
}

impl Exporter {
    fn new(format: Format, filter: Filter) -> Self {
        Self {
            format,
            filter,
            csv: Csv::default(),
        }
    }

    /// What comes before the first entry.
    fn header(&self, out: &mut Vec<u8>) {
        if self.format == Format::Csv {
            out.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            out.push(b'\n');
        }
    }

    /// Appends what `entry` contributes. Every entry must pass through here, in order, also
    /// those outside the filter: a release row needs its grant.
    fn entry(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        let in_range = self.filter.in_range(entry.at);
        match self.format {
            Format::Jsonl => {
                if in_range && self.filter.takes_kind(entry.event.kind()) {
                    // Writing into a Vec cannot fail, and a ledger entry always serialises.
                    let _ = serde_json::to_writer(&mut *out, &json_line(entry));
                    out.push(b'\n');
                }
            }
            Format::Csv => {
                for row in self.csv.rows(entry) {
                    if in_range && self.filter.takes_kind(&row[2]) {
                        let _ = writeln!(out, "{}", row.join(","));
                    }
                }
            }
        }
    }
}

const CSV_COLUMNS: &[&str] = &[
    "seq",
    "at",
    "kind",
    "session_id",
    "license_id",
    "product_id",
    "major_version",
    "product",
    "type",
    "pool",
    "credits_used",
    "host",
    "ip_address",
    "status",
    "by",
    "license_key",
    "serial_number",
    "reason",
    "realm",
    "principal",
];

/// Entries as CSV rows, remembering each grant held for the release that follows it.
#[derive(Debug, Default)]
struct Csv {
    grants: HashMap<u64, Vec<String>>,
}

/// One JSON object per entry: seq, at, and the event as stored.
pub fn json_line(entry: &Entry) -> serde_json::Value {
    json!({"seq": entry.seq, "at": rfc3339(entry.at), "event": entry.event})
}

impl Csv {
    /// The CSV rows of `entry`, in [`CSV_COLUMNS`]: one, and one more per license a
    /// `session_closed` entry released. Entries must come in ledger order: a release names only
    /// the license, and the grant before it tells what it was for.
    fn rows(&mut self, entry: &Entry) -> Vec<Vec<String>> {
        let grants = &mut self.grants;
        let mut row: HashMap<&str, String> = HashMap::from([
            ("seq", entry.seq.to_string()),
            ("at", rfc3339(entry.at)),
            ("kind", entry.event.kind().to_owned()),
        ]);
        let mut extra = Vec::new();
        let type_name = |t: &LicenseType| match t {
            LicenseType::Runcount => "runcount",
            LicenseType::Credits => "credits",
        };
        let opt = |pool: &Option<String>| pool.clone().unwrap_or_default();
        match &entry.event {
            Event::SessionOpened {
                session_id,
                host,
                ip_address,
                pool,
                user,
                ..
            } => {
                row.insert("session_id", session_id.to_string());
                fill_client(&mut row, host, ip_address, pool, user.as_ref());
            }
            Event::SessionRefused {
                host,
                ip_address,
                pool,
                user,
                reason,
            } => {
                fill_client(&mut row, host, ip_address, pool, user.as_ref());
                row.insert("reason", reason.as_str().to_owned());
            }
            Event::LicenseGranted {
                session_id,
                license_id,
                product_id,
                major_version,
                product,
                license_type,
                pool,
                ..
            } => {
                let details = vec![
                    session_id.to_string(),
                    product_id.to_string(),
                    major_version.to_string(),
                    product.clone(),
                    type_name(license_type).to_owned(),
                    opt(pool),
                ];
                grants.insert(*license_id, details);
                row.insert("license_id", license_id.to_string());
                fill_grant(&mut row, grants.get(license_id));
            }
            Event::LicenseRefused {
                session_id,
                product_id,
                major_version,
                pool,
                reason,
            } => {
                row.insert("session_id", session_id.to_string());
                row.insert("product_id", product_id.to_string());
                row.insert("major_version", major_version.to_string());
                row.insert("pool", opt(pool));
                row.insert(
                    "reason",
                    reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
                );
            }
            Event::LicenseReleased {
                license_id,
                credits_used,
            } => {
                row.insert("license_id", license_id.to_string());
                row.insert("credits_used", credits_used.to_string());
                fill_grant(&mut row, grants.remove(license_id).as_ref());
            }
            Event::SessionClosed {
                session_id,
                status,
                released,
                by,
            } => {
                row.insert("session_id", session_id.to_string());
                row.insert("status", format!("{status:?}").to_lowercase());
                row.insert("by", by.clone().unwrap_or_default());
                for r in released {
                    let mut release = HashMap::from([
                        ("seq", entry.seq.to_string()),
                        ("at", rfc3339(entry.at)),
                        ("kind", "license_released".to_owned()),
                        ("license_id", r.license_id.to_string()),
                        ("credits_used", r.credits_used.to_string()),
                        (
                            "by",
                            format!("session_closed ({})", format!("{status:?}").to_lowercase()),
                        ),
                    ]);
                    fill_grant(&mut release, grants.remove(&r.license_id).as_ref());
                    extra.push(release);
                }
            }
            Event::LicenseInstalled {
                key,
                serial_number,
                by,
                ..
            } => {
                row.insert("by", opt(by));
                row.insert("license_key", key.clone());
                row.insert("serial_number", serial_number.to_string());
            }
            Event::LicenseRemoved {
                key,
                serial_number,
                by,
                ..
            } => {
                row.insert("by", by.clone());
                row.insert("license_key", key.clone());
                row.insert("serial_number", serial_number.to_string());
            }
            Event::ServerMoved {
                previous_server_id,
                server_id,
                host_inputs,
            } => {
                row.insert("host", host_inputs.clone());
                row.insert(
                    "status",
                    format!("moved: server id {previous_server_id} is now {server_id}"),
                );
            }
            Event::CartridgeAssigned {
                serial_number,
                pool,
            } => {
                row.insert("serial_number", serial_number.to_string());
                row.insert("pool", opt(pool));
            }
            Event::AdminUserChanged {
                principal,
                change,
                role: _,
                by,
            } => {
                row.insert("principal", principal.clone());
                row.insert("status", change.clone());
                row.insert("by", by.clone());
            }
            Event::LicensedUsersCleared {
                realm,
                principal,
                removed,
                by,
            } => {
                row.insert("realm", opt(realm));
                row.insert("principal", opt(principal));
                row.insert("status", format!("{removed} removed"));
                row.insert("by", by.clone());
            }
            Event::NetworkChanged {
                previous_network_id,
                network_id,
                members,
                by,
            } => {
                row.insert(
                    "status",
                    format!(
                        "network id {previous_network_id} is now {network_id}, members {}",
                        members.join(" ")
                    ),
                );
                row.insert("by", by.clone());
            }
        }
        std::iter::once(row)
            .chain(extra)
            .map(|row| {
                CSV_COLUMNS
                    .iter()
                    .map(|c| csv_field(row.get(c).map_or("", String::as_str)))
                    .collect()
            })
            .collect()
    }
}

/// The client a session (opened or refused) was for: where it ran, its pool, and its user.
fn fill_client(
    row: &mut HashMap<&str, String>,
    host: &str,
    ip_address: &std::net::IpAddr,
    pool: &Option<String>,
    user: Option<&models::User>,
) {
    row.insert("host", host.to_owned());
    row.insert("ip_address", ip_address.to_string());
    row.insert("pool", pool.clone().unwrap_or_default());
    if let Some(user) = user {
        row.insert("realm", user.realm.clone());
        row.insert("principal", user.principal.clone());
    }
}

fn fill_grant(row: &mut HashMap<&str, String>, grant: Option<&Vec<String>>) {
    if let Some(g) = grant {
        for (column, value) in [
            "session_id",
            "product_id",
            "major_version",
            "product",
            "type",
            "pool",
        ]
        .into_iter()
        .zip(g)
        {
            row.insert(column, value.clone());
        }
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. A field a
/// spreadsheet would take for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return: a host name or job message a client chose, say) gets a leading `'`, so opening the
/// export never runs what a client wrote (OWASP's advice against CSV injection).
fn csv_field(value: &str) -> String {
    let guarded;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_kinds_are_parsed_with_clear_errors() {
        assert_eq!(
            parse_time("2026-11-01").unwrap(),
            time::macros::datetime!(2026-11-01 00:00 UTC)
        );
        assert_eq!(
            parse_time("2026-11-01T10:30:00+01:00").unwrap(),
            time::macros::datetime!(2026-11-01 09:30 UTC)
        );
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        assert_eq!(
            parse_kinds("license_released,license_refused").unwrap(),
            ["license_released", "license_refused"]
        );
        assert!(parse_kinds("license_released, license_refused").is_err());
        assert!(
            parse_kinds("grants")
                .unwrap_err()
                .contains("one of: session_opened")
        );
    }

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn fields_a_spreadsheet_would_run_as_formulas_are_defused() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for start in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(csv_field(start), format!("'{start}"));
        }
        assert_eq!(csv_field("render-7"), "render-7");
    }
}
