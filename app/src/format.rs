//! How values of the status document are written on the page. Pure functions, so what the
//! operator reads is tested without a browser.

use models::{Cartridge, HeldLicense, LicenseType, Server, ServerStatus, SessionStatus};
use time::{OffsetDateTime, UtcOffset, macros::format_description};

/// "Product" column: the name, plus the major version unless the cartridge covers any version.
pub fn product_label(product: &str, major_version: u32) -> String {
    if major_version == 0 {
        product.to_owned()
    } else {
        format!("{product} {major_version}")
    }
}

/// "Status" column of a server: the coordinator carries a `*`.
pub fn server_status(server: &Server, is_coordinator: bool) -> String {
    let status = match server.status {
        ServerStatus::Running => "running",
        ServerStatus::Unreachable => "unreachable",
    };
    if is_coordinator {
        format!("{status}*")
    } else {
        status.to_owned()
    }
}

pub fn session_status(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Running => "running",
        SessionStatus::Finished => "finished",
        SessionStatus::Dropped => "dropped",
    }
}

pub fn license_type(license: &HeldLicense) -> &'static str {
    match license.license_type {
        LicenseType::Runcount => "runcount",
        LicenseType::Credits => "credits",
    }
}

/// "Runcount" column: `in use / total`.
pub fn runcount_usage(cartridge: &Cartridge) -> String {
    format!(
        "{} / {}",
        group_digits(i64::from(cartridge.statistic.runcount_in_use)),
        group_digits(i64::from(cartridge.runcount))
    )
}

/// "Credits" column: `used / total`, with postpay marked because its total is not a limit.
pub fn credit_usage(cartridge: &Cartridge) -> String {
    let usage = format!(
        "{} / {}",
        group_digits(cartridge.statistic.used_credits),
        group_digits(cartridge.credits)
    );
    if cartridge.postpay {
        format!("{usage} (postpay)")
    } else {
        usage
    }
}

/// Thousands separated by a thin space, so 100000 credits read as 100 000 in any locale.
pub fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(c);
    }
    out
}

/// `one` or `many` as `n` asks: "1 session", "2 sessions".
pub fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A timestamp as the operator's clock shows it: `2019-06-26 19:04:40` at `offset`.
pub fn date_time(t: OffsetDateTime, offset: UtcOffset) -> String {
    t.to_offset(offset)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_else(|_| t.to_string())
}

/// A time of day at `offset`: `19:04:40`.
pub fn time_of_day(t: OffsetDateTime, offset: UtcOffset) -> String {
    t.to_offset(offset)
        .format(format_description!("[hour]:[minute]:[second]"))
        .unwrap_or_else(|_| t.to_string())
}

/// How long something ran, to the unit that matters: `45 s`, `12 min 5 s`, `3 h 05 min`,
/// `2 d 4 h`.
pub fn duration(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes:02} min")
    } else if minutes > 0 {
        format!("{minutes} min {seconds} s")
    } else {
        format!("{seconds} s")
    }
}

/// A zone as a label: `UTC`, `UTC+1`, `UTC−3:30`.
pub fn zone_label(offset: UtcOffset) -> String {
    let (hours, minutes, _) = offset.as_hms();
    if (hours, minutes) == (0, 0) {
        return "UTC".to_owned();
    }
    let sign = if offset.is_negative() { '−' } else { '+' };
    let (hours, minutes) = (hours.unsigned_abs(), minutes.unsigned_abs());
    if minutes == 0 {
        format!("UTC{sign}{hours}")
    } else {
        format!("UTC{sign}{hours}:{minutes:02}")
    }
}

/// Tooltip of a cartridge's product: where its licenses come from, one serial per line.
pub fn locations(cartridge: &Cartridge) -> String {
    cartridge
        .locations
        .iter()
        .map(|l| {
            let mut grants = Vec::new();
            if l.runcount > 0 {
                grants.push(format!("runcount {}", group_digits(i64::from(l.runcount))));
            }
            if l.credits > 0 || !l.postpay {
                grants.push(format!("credits {}", group_digits(l.credits)));
            }
            if l.postpay {
                grants.push("postpay".to_owned());
            }
            format!("serial {}: {}", l.serial_number, grants.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How close a license is to its end: shown with a warning from [`EXPIRY_WARNING_DAYS`] before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    Later,
    /// Within the warning period: the days left, rounded down.
    Soon(i64),
    Expired,
}

pub const EXPIRY_WARNING_DAYS: i64 = 30;

pub fn expiry(expires: Option<OffsetDateTime>, now: OffsetDateTime) -> Expiry {
    match expires {
        None => Expiry::Never,
        Some(at) if at <= now => Expiry::Expired,
        Some(at) if (at - now).whole_days() < EXPIRY_WARNING_DAYS => {
            Expiry::Soon((at - now).whole_days())
        }
        Some(_) => Expiry::Later,
    }
}

/// A product rule as one line: `callas pdfToolbox CLI 10: runcount 8, credits 5 000 (postpay)`.
pub fn product_rule(rule: &models::ProductRule) -> String {
    let mut grants = Vec::new();
    if rule.runcount > 0 {
        grants.push(format!(
            "runcount {}",
            group_digits(i64::from(rule.runcount))
        ));
    }
    if rule.credits > 0 || rule.postpay {
        grants.push(format!(
            "credits {}",
            group_digits(i64::try_from(rule.credits).unwrap_or(i64::MAX))
        ));
    }
    if grants.is_empty() {
        grants.push("nothing".to_owned());
    }
    let postpay = if rule.postpay { " (postpay)" } else { "" };
    format!(
        "{}: {}{postpay}",
        product_label(&rule.product, rule.major_version),
        grants.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::{CartridgeStatistic, FailedByReason, LicenseCounts};
    use time::macros::{datetime, offset};

    #[test]
    fn durations_name_the_units_that_matter() {
        let d = time::Duration::seconds;
        assert_eq!(duration(d(-3)), "0 s");
        assert_eq!(duration(d(45)), "45 s");
        assert_eq!(duration(d(12 * 60 + 5)), "12 min 5 s");
        assert_eq!(duration(d(3 * 3600 + 5 * 60)), "3 h 05 min");
        assert_eq!(duration(d(2 * 86_400 + 4 * 3600 + 59)), "2 d 4 h");
    }

    #[test]
    fn zones_are_labelled_from_utc() {
        assert_eq!(zone_label(offset!(UTC)), "UTC");
        assert_eq!(zone_label(offset!(+1)), "UTC+1");
        assert_eq!(zone_label(offset!(-3:30)), "UTC−3:30");
        assert_eq!(zone_label(offset!(+5:45)), "UTC+5:45");
    }

    fn cartridge(runcount: u32, in_use: u32, credits: i64, used: i64, postpay: bool) -> Cartridge {
        Cartridge {
            product_id: 1000,
            major_version: 10,
            product: "callas pdfToolbox CLI".into(),
            runcount,
            credits,
            postpay,
            statistic: CartridgeStatistic {
                licenses: LicenseCounts {
                    runcount: 0,
                    credits: 0,
                    failed: 0,
                    failed_by_reason: FailedByReason::default(),
                },
                used_credits: used,
                remaining_credits: credits - used,
                runcount_in_use: in_use,
                sessions_dropped: 0,
            },
            locations: vec![],
        }
    }

    #[test]
    fn locations_list_each_serial_with_what_it_grants() {
        let mut c = cartridge(10, 0, 5000, 0, true);
        let location = |serial_number, runcount, credits, postpay| models::Location {
            server_id: "AB".into(),
            serial_number,
            runcount,
            credits,
            postpay,
            expires: None,
        };
        c.locations = vec![
            location(200000512, 8, 0, false),
            location(200000556, 2, 5000, true),
        ];
        assert_eq!(
            locations(&c),
            "serial 200000512: runcount 8, credits 0\nserial 200000556: runcount 2, credits 5\u{202f}000, postpay"
        );
    }

    #[test]
    fn product_shows_major_version_unless_any() {
        assert_eq!(product_label("pdfToolbox", 0), "pdfToolbox");
        assert_eq!(product_label("pdfToolbox", 10), "pdfToolbox 10");
    }

    #[test]
    fn usage_columns_read_in_use_over_total() {
        assert_eq!(runcount_usage(&cartridge(8, 3, 0, 0, false)), "3 / 8");
        assert_eq!(
            credit_usage(&cartridge(0, 0, 100_000, 2155, false)),
            "2\u{202F}155 / 100\u{202F}000"
        );
        assert_eq!(
            credit_usage(&cartridge(0, 0, 10, 12, true)),
            "12 / 10 (postpay)"
        );
    }

    #[test]
    fn digits_are_grouped_by_three_and_keep_their_sign() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1\u{202F}000");
        assert_eq!(group_digits(-1_234_567), "-1\u{202F}234\u{202F}567");
        assert_eq!(
            group_digits(i64::MIN),
            "-9\u{202F}223\u{202F}372\u{202F}036\u{202F}854\u{202F}775\u{202F}808"
        );
    }

    #[test]
    fn times_are_shown_in_the_given_offset() {
        let t = datetime!(2019-06-26 17:04:40 UTC);
        assert_eq!(date_time(t, offset!(+2)), "2019-06-26 19:04:40");
        assert_eq!(time_of_day(t, offset!(-5)), "12:04:40");
    }

    #[test]
    fn expiry_warns_thirty_days_ahead() {
        let now = datetime!(2026-11-22 12:00 UTC);
        assert_eq!(expiry(None, now), Expiry::Never);
        assert_eq!(
            expiry(Some(now + time::Duration::days(90)), now),
            Expiry::Later
        );
        assert_eq!(
            expiry(Some(now + time::Duration::days(29)), now),
            Expiry::Soon(29)
        );
        assert_eq!(expiry(Some(now), now), Expiry::Expired);
    }

    #[test]
    fn a_product_rule_reads_as_one_line() {
        let rule = models::ProductRule {
            product_id: 1000,
            major_version: 10,
            product: "callas pdfToolbox CLI".into(),
            runcount: 8,
            credits: 5000,
            postpay: true,
        };
        assert_eq!(
            product_rule(&rule),
            "callas pdfToolbox CLI 10: runcount 8, credits 5\u{202F}000 (postpay)"
        );
    }
}
