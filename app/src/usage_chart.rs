//! The usage screen's charts: step lines over a report's buckets, with a value axis and a time
//! axis, a legend, and the values of the bucket under the pointer. Inline SVG without a chart
//! library (a few path commands); colours come from CSS classes, since the page's
//! Content-Security-Policy allows no inline styles.

use leptos::{ev, prelude::*};
use time::{OffsetDateTime, UtcOffset};
use wasm_bindgen::JsCast;

use crate::clock;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;
/// Lines drawn in one chart; the CSS has a colour for each.
pub const MOST_LINES: usize = 8;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub values: Vec<f64>,
    /// Drawn dashed: a limit (the seats licensed), not a measurement.
    pub dashed: bool,
}

/// The buckets of a chart: `count` of `step` seconds from `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub from: OffsetDateTime,
    pub step: i64,
    pub count: usize,
}

impl Buckets {
    pub fn start(&self, i: usize) -> OffsetDateTime {
        self.from + time::Duration::seconds(self.step * i as i64)
    }

    /// A bucket's start as a label: `14:00` by the hour over a day or two, `12-07 14:00` by the
    /// hour over longer, `12-07` by the day; in the browser's zone.
    pub fn label(&self, i: usize) -> String {
        let t = self.start(i);
        let local = t.to_offset(clock::local_offset(t));
        let (month, day) = (u8::from(local.month()), local.day());
        match (self.step < 86_400, self.count <= 48) {
            (true, true) => format!("{:02}:{:02}", local.hour(), local.minute()),
            (true, false) => format!("{month:02}-{day:02} {:02}:00", local.hour()),
            (false, _) => format!("{month:02}-{day:02}"),
        }
    }

    fn x(&self, i: usize) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / self.count.max(1) as f64
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `max` (at least 1): the top of the value axis.
pub fn nice_top(max: f64) -> f64 {
    let max = max.max(1.0);
    let mut scale = 1.0;
    while scale * 10.0 < max {
        scale *= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * scale)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * scale)
}

/// The values marked on the axis up to `top`: steps of a fifth of a top that starts with 1 or 5
/// (0, 1, 2 … 5), of a quarter of one that starts with 2 (0, 0.5, 1 … 2), so that every mark is
/// a round number. Below 10, only whole numbers: what the charts count (licenses, requests,
/// credits) comes whole, and a mark at 1.5 licenses would read oddly.
pub fn ticks(top: f64) -> Vec<f64> {
    let mut lead = top;
    while lead >= 10.0 {
        lead /= 10.0;
    }
    let parts = if (lead - 2.0).abs() < 1e-9 { 4 } else { 5 };
    (0..=parts)
        .map(|k| top * f64::from(k) / f64::from(parts))
        .filter(|v| top >= 10.0 || v.fract() == 0.0)
        .collect()
}

fn y(value: f64, top: f64) -> f64 {
    let height = HEIGHT - TOP - BOTTOM;
    TOP + height - (value / top).clamp(0.0, 1.0) * height
}

/// A step line: each bucket's value held across its width.
pub fn step_path(buckets: &Buckets, values: &[f64], top: f64) -> String {
    let mut path = String::new();
    for (i, v) in values.iter().enumerate() {
        let (x0, x1, y) = (buckets.x(i), buckets.x(i + 1), y(*v, top));
        if i == 0 {
            path.push_str(&format!("M{x0:.1} {y:.1}"));
        } else {
            path.push_str(&format!(" V{y:.1}"));
        }
        path.push_str(&format!(" H{x1:.1}"));
    }
    path
}

/// A value as the axis and the hover show it: whole numbers plainly, others with one decimal.
pub fn number(v: f64) -> String {
    if (v - v.round()).abs() < 0.05 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The bucket under the pointer of `event` on the chart's SVG.
fn bucket_at(event: &ev::MouseEvent, buckets: &Buckets) -> Option<usize> {
    let svg = event
        .current_target()?
        .dyn_into::<web_sys::Element>()
        .ok()?;
    let rect = svg.get_bounding_client_rect();
    let x = (f64::from(event.client_x()) - rect.left()) / rect.width().max(1.0) * WIDTH;
    let share = (x - LEFT) / (WIDTH - LEFT - RIGHT);
    (0.0..1.0)
        .contains(&share)
        .then_some((share * buckets.count as f64) as usize)
}

/// A chart of `lines` over `buckets`: `title` above it, the axes, a legend, and below it the
/// values of the bucket under the pointer.
#[component]
pub fn UsageChart(
    #[prop(into)] id: String,
    title: String,
    /// What the values count, for the screen reader's summary ("licenses in use").
    unit: &'static str,
    buckets: Buckets,
    lines: Vec<Line>,
) -> impl IntoView {
    let lines: Vec<Line> = lines.into_iter().take(MOST_LINES).collect();
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .fold(0.0, f64::max);
    let top = nice_top(max);
    let hovered = RwSignal::new(None::<usize>);
    let summary = format!(
        "{title}: {} from {} to {}, highest {} {unit}",
        lines
            .iter()
            .map(|l| l.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        buckets.label(0),
        buckets.label(buckets.count.saturating_sub(1)),
        number(max)
    );
    let ticks = ticks(top);
    let every = buckets.count.div_ceil(6).max(1);
    let times: Vec<usize> = (0..buckets.count).step_by(every).collect();
    let paths: Vec<(usize, bool, String)> = lines
        .iter()
        .enumerate()
        .map(|(k, l)| (k, l.dashed, step_path(&buckets, &l.values, top)))
        .collect();
    let hover_lines = lines.clone();
    let hover_text = move || {
        let i = hovered.get()?;
        let values: Vec<String> = hover_lines
            .iter()
            .map(|l| {
                format!(
                    "{} {}",
                    l.label,
                    number(l.values.get(i).copied().unwrap_or(0.0))
                )
            })
            .collect();
        Some(format!("{}: {}", buckets.label(i), values.join(" · ")))
    };
    let guide = move || {
        hovered.get().map(|i| {
            let x = (buckets.x(i) + buckets.x(i + 1)) / 2.0;
            view! { <line class="guide" x1=x y1=TOP x2=x y2=HEIGHT - BOTTOM /> }
        })
    };
    view! {
        <figure class="usage-chart" id=id>
            <figcaption>{title}</figcaption>
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-label=summary
                on:mousemove=move |e| hovered.set(bucket_at(&e, &buckets))
                on:mouseleave=move |_| hovered.set(None)
            >
                {ticks
                    .iter()
                    .map(|v| {
                        let y = y(*v, top);
                        view! {
                            <line class="grid" x1=LEFT y1=y x2=WIDTH - RIGHT y2=y />
                            <text class="tick" x=LEFT - 6.0 y=y + 4.0 text-anchor="end">
                                {number(*v)}
                            </text>
                        }
                    })
                    .collect_view()}
                {times
                    .iter()
                    .map(|i| {
                        let x = buckets.x(*i);
                        view! {
                            <line class="grid" x1=x y1=HEIGHT - BOTTOM x2=x y2=HEIGHT - BOTTOM + 4.0 />
                            <text class="tick" x=x y=HEIGHT - 8.0 text-anchor="start">
                                {buckets.label(*i)}
                            </text>
                        }
                    })
                    .collect_view()}
                <line class="axis" x1=LEFT y1=HEIGHT - BOTTOM x2=WIDTH - RIGHT y2=HEIGHT - BOTTOM />
                <line class="axis" x1=LEFT y1=TOP x2=LEFT y2=HEIGHT - BOTTOM />
                {paths
                    .into_iter()
                    .map(|(k, dashed, d)| {
                        let class = if dashed {
                            format!("line line-{k} dashed")
                        } else {
                            format!("line line-{k}")
                        };
                        view! { <path class=class d=d /> }
                    })
                    .collect_view()}
                {guide}
            </svg>
            <ul class="legend">
                {lines
                    .iter()
                    .enumerate()
                    .map(|(k, l)| {
                        view! {
                            <li>
                                <span class=format!("swatch swatch-{k}") aria-hidden="true"></span>
                                {l.label.clone()}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <p class="hover" aria-live="polite">
                {move || hover_text().unwrap_or_else(|| "Point at the chart for its values.".to_owned())}
            </p>
        </figure>
    }
}

/// The browser's offset from UTC now, in minutes: what a report's days are aligned to.
pub fn utc_offset_minutes() -> i32 {
    let offset: UtcOffset = clock::local_offset(clock::now());
    offset.whole_minutes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_axis_ends_on_a_round_number() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(3.0), 5.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(11.0), 20.0);
        assert_eq!(nice_top(480.0), 500.0);
        assert_eq!(nice_top(501.0), 1000.0);
        assert_eq!(ticks(5.0), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(ticks(2.0), [0.0, 1.0, 2.0]);
        assert_eq!(ticks(1.0), [0.0, 1.0]);
        assert_eq!(ticks(20.0), [0.0, 5.0, 10.0, 15.0, 20.0]);
        assert_eq!(ticks(1000.0), [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
    }

    #[test]
    fn a_step_line_holds_each_value_across_its_bucket() {
        let buckets = Buckets {
            from: OffsetDateTime::UNIX_EPOCH,
            step: 3600,
            count: 2,
        };
        let path = step_path(&buckets, &[0.0, 10.0], 10.0);
        assert_eq!(
            path,
            format!(
                "M{LEFT:.1} {:.1} H{:.1} V{TOP:.1} H{:.1}",
                HEIGHT - BOTTOM,
                LEFT + 328.0,
                WIDTH - RIGHT
            )
        );
        assert_eq!(number(2.0), "2");
        assert_eq!(number(2.25), "2.2");
    }
}
