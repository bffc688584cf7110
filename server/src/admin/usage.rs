//! `GET /server/manage/usage` (VIEW): the usage report over a range, aggregated on the server
//! from the usage totals (`crate::usage`); the browser never gets the raw ledger.

use axum::{Json, extract::State};
use models::{
    ApiError, ErrorCode, MAX_EXPORT_TIME, MAX_USAGE_DAYS, MAX_USAGE_HOURLY_DAYS, UsageQuery,
    UsageReport, UsageStep,
};
use time::OffsetDateTime;

use super::extract::{Refused, SessionToken, Viewer};
use crate::{
    app::AppState,
    http::{AppError, extract::Query},
    ledger::export::parse_time,
    store::usage::{Cartridge, UsageFilter},
    usage::{Installed, Range},
};

/// The range a report covers when `from` is not given.
const DEFAULT_DAYS: i64 = 7;
/// Up to this range, a report is by the hour unless it asks otherwise.
const HOURLY_UP_TO_DAYS: i64 = 7;
const DAY: i64 = 86_400;

/// Usage over a range, per cartridge, host and user: series per hour or day, peaks, credits
/// and their burn rate, refusals by reason, the busiest hosts and users.
#[utoipa::path(
    get, path = "/server/manage/usage", tag = "usage",
    params(SessionToken, UsageQuery),
    responses(
        (status = 200, description = "the report", body = UsageReport),
        Refused,
        (status = 400, description = "INVALID_QUERY: a time that is not RFC 3339 or a day, a range that is empty or too long, a filter too long", body = ApiError),
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    _: Viewer,
    Query(query): Query<UsageQuery>,
) -> Result<Json<UsageReport>, AppError> {
    let now = OffsetDateTime::now_utc();
    let (range, filter) = read(&query, now.unix_timestamp())
        .map_err(|why| AppError::bad_request(ErrorCode::InvalidQuery, why))?;
    let installed = installed(&state);
    let report = state.usage.report(range, &filter, now, &installed).await?;
    Ok(Json(report))
}

/// The cartridges installed now, in every pool.
fn installed(state: &AppState) -> Vec<Installed> {
    let pools = state.inventory.snapshot().pools();
    pools
        .iter()
        .flat_map(|pool| {
            state
                .cartridges(pool.as_deref())
                .into_iter()
                .map(move |c| Installed {
                    cartridge: Cartridge {
                        pool: pool.clone().unwrap_or_default(),
                        product_id: c.product_id,
                        major_version: c.major_version,
                    },
                    credits_left: (c.credits > 0 && !c.postpay)
                        .then_some(c.statistic.remaining_credits),
                    product: c.product,
                    runcount: c.runcount,
                })
        })
        .collect()
}

/// The range and filter `query` asks for, checked, as of `now` (Unix seconds).
fn read(query: &UsageQuery, now: i64) -> Result<(Range, UsageFilter), String> {
    let bounded = |name: &str, text: &Option<String>, most: usize| match text {
        Some(t) if t.chars().count() > most => Err(format!("{name} is at most {most} characters")),
        Some(t) if t.chars().any(char::is_control) => {
            Err(format!("{name} has a control character"))
        }
        _ => Ok(()),
    };
    bounded("from", &query.from, MAX_EXPORT_TIME)?;
    bounded("to", &query.to, MAX_EXPORT_TIME)?;
    bounded("pool", &query.pool, 64)?;
    bounded("host", &query.host, 255)?;
    bounded("realm", &query.realm, 64)?;
    bounded("principal", &query.principal, 256)?;
    let offset = i64::from(query.utc_offset.unwrap_or(0));
    if !(-840..=840).contains(&offset) {
        return Err("utc_offset is in minutes, from -840 to 840".to_owned());
    }
    let offset = offset * 60;
    // A day is midnight at the viewer's offset; a time is what it says.
    let time = |text: &str| -> Result<i64, String> {
        let t = parse_time(text)?.unix_timestamp();
        Ok(if text.len() == 10 { t - offset } else { t })
    };
    let to = query.to.as_deref().map(time).transpose()?.unwrap_or(now);
    let from = query
        .from
        .as_deref()
        .map(time)
        .transpose()?
        .unwrap_or(to - DEFAULT_DAYS * DAY);
    if to <= from {
        return Err("to must be after from".to_owned());
    }
    let filter = UsageFilter {
        pool: query.pool.clone(),
        product_id: query.product_id,
        major_version: query.major_version,
        host: query.host.clone(),
        realm: query.realm.clone(),
        principal: query.principal.clone(),
    };
    if filter.host.is_some() && (filter.realm.is_some() || filter.principal.is_some()) {
        return Err(
            "a report is on a host or on a user, not both: their totals are kept apart".to_owned(),
        );
    }
    let step = match query.step {
        Some(UsageStep::Hour) if filter.by_party() => {
            return Err(
                "a report on a host or user is by the day (step=day): their totals are kept per day"
                    .to_owned(),
            );
        }
        Some(step) => step,
        None if filter.by_party() || to - from > HOURLY_UP_TO_DAYS * DAY => UsageStep::Day,
        None => UsageStep::Hour,
    };
    let size = step.seconds();
    let from = from - (from + offset).rem_euclid(size);
    let to = to + (size - (to + offset).rem_euclid(size)) % size;
    if to - from > MAX_USAGE_DAYS * DAY {
        return Err(format!("a report covers at most {MAX_USAGE_DAYS} days"));
    }
    if step == UsageStep::Hour && to - from > MAX_USAGE_HOURLY_DAYS * DAY {
        return Err(format!(
            "a report by the hour covers at most {MAX_USAGE_HOURLY_DAYS} days; use step=day"
        ));
    }
    Ok((Range { from, to, step }, filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000; // 2026-11-30T...

    fn query(pairs: &[(&str, &str)]) -> UsageQuery {
        let text: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('\u{7}', "%07")))
            .collect();
        let uri: axum::http::Uri = format!("/?{}", text.join("&")).parse().unwrap();
        axum::extract::Query::<UsageQuery>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    #[test]
    fn the_default_is_the_last_week_by_the_hour_on_whole_hours() {
        let (range, filter) = read(&UsageQuery::default(), NOW).unwrap();
        assert_eq!(range.step, UsageStep::Hour);
        assert_eq!(range.from % 3600, 0);
        assert_eq!(range.to % 3600, 0);
        assert!(range.to >= NOW && range.to - NOW < 3600);
        assert_eq!((range.to - range.from) / 3600, 7 * 24 + 1);
        assert_eq!(filter, UsageFilter::default());
    }

    #[test]
    fn days_are_the_viewers_and_a_month_is_by_the_day() {
        let q = query(&[
            ("from", "2026-11-01"),
            ("to", "2026-12-01"),
            ("utc_offset", "60"),
        ]);
        let (range, _) = read(&q, NOW).unwrap();
        assert_eq!(range.step, UsageStep::Day);
        let from = OffsetDateTime::from_unix_timestamp(range.from).unwrap();
        assert_eq!(from.to_string(), "2026-10-31 23:00:00.0 +00:00:00");
        assert_eq!((range.to - range.from) / DAY, 30);
    }

    #[test]
    fn bad_ranges_and_filters_are_refused_with_the_reason() {
        let refused = |pairs: &[(&str, &str)]| read(&query(pairs), NOW).unwrap_err();
        assert!(refused(&[("from", "2026-12-01"), ("to", "2026-11-01")]).contains("after"));
        assert!(refused(&[("from", "2025-01-01"), ("to", "2026-12-01")]).contains("400 days"));
        assert!(
            refused(&[
                ("from", "2026-01-01"),
                ("to", "2026-06-01"),
                ("step", "hour")
            ])
            .contains("step=day")
        );
        assert!(refused(&[("host", "h"), ("step", "hour")]).contains("by the day"));
        assert!(refused(&[("utc_offset", "900")]).contains("-840"));
        assert!(refused(&[("from", "yesterday")]).contains("RFC 3339"));
        assert!(refused(&[("host", &"h".repeat(256))]).contains("255"));
        assert!(refused(&[("pool", "a\u{7}")]).contains("control"));
        assert!(refused(&[("host", "h"), ("principal", "p")]).contains("not both"));
        let (range, _) = read(&query(&[("host", "ci-7")]), NOW).unwrap();
        assert_eq!(range.step, UsageStep::Day);
    }
}
