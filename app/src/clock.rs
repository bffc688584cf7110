//! Time in the browser: now, the local zone, and a time cell. (No `SystemTime::now()` in wasm: the
//! clock is JavaScript's.)

use leptos::prelude::*;
use time::{OffsetDateTime, UtcOffset};
use wasm_bindgen::JsValue;

use crate::format;

/// A `<td>` with the time in the browser's zone, and the exact RFC 3339 value on hover.
pub fn timestamp(t: OffsetDateTime) -> impl IntoView {
    let exact = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    view! {
        <td>
            <time datetime=exact.clone() title=exact>
                {format::date_time(t, local_offset(t))}
            </time>
        </td>
    }
}

/// The browser's UTC offset at instant `t` (daylight saving time depends on the date).
pub fn local_offset(t: OffsetDateTime) -> UtcOffset {
    let millis = (t.unix_timestamp_nanos() / 1_000_000) as f64;
    // JavaScript counts the offset in minutes, west of UTC positive.
    let west_minutes = js_sys::Date::new(&JsValue::from_f64(millis)).get_timezone_offset();
    UtcOffset::from_whole_seconds(-(west_minutes as i32) * 60).unwrap_or(UtcOffset::UTC)
}

pub fn now() -> OffsetDateTime {
    let nanos = (js_sys::Date::now() * 1_000_000.0) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t` as a date and time in the browser's zone.
pub fn local(t: OffsetDateTime) -> String {
    format::date_time(t, local_offset(t))
}

/// Which zone the page's times are in (the browser's), so a time is never read in another.
#[component]
pub fn ZoneNote() -> impl IntoView {
    let zone = format::zone_label(local_offset(now()));
    view! {
        <p class="updated zone" title="Times on this page are in your browser's time zone">
            {format!("Times in {zone}")}
        </p>
    }
}
