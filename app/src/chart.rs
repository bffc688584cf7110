//! One small chart per cartridge: runcount in use and credits used over the last hour, drawn as
//! inline SVG from `/status/history.json`. No chart library: two step lines and a baseline are a
//! few path commands, and the page's Content-Security-Policy allows no inline styles, so colours
//! come from CSS classes.

use leptos::prelude::*;
use models::{Cartridge, CartridgeHistory, Sample};

use crate::format;

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 48.0;

/// A step line through `points` (`(seconds since the window's start, value)`), scaled so that the
/// window `span` fills the width and `max` the height. A step line, because a count holds its value
/// until the next sample.
pub fn step_path(points: &[(f64, f64)], span: f64, max: f64) -> String {
    let x = |t: f64| (t / span).clamp(0.0, 1.0) * WIDTH;
    let y = |v: f64| HEIGHT - (v / max.max(1.0)).clamp(0.0, 1.0) * (HEIGHT - 2.0) - 1.0;
    let mut path = String::new();
    for (i, (t, v)) in points.iter().enumerate() {
        if i == 0 {
            path.push_str(&format!("M{:.1} {:.1}", x(*t), y(*v)));
        } else {
            path.push_str(&format!(" H{:.1} V{:.1}", x(*t), y(*v)));
        }
    }
    path
}

/// The series of one cartridge, relative to the window that ends at its last sample.
fn series(samples: &[Sample], span_s: u32, value: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    let Some(last) = samples.last() else {
        return Vec::new();
    };
    let start = last.at - time::Duration::seconds(i64::from(span_s));
    samples
        .iter()
        .map(|s| ((s.at - start).as_seconds_f64(), value(s)))
        .collect()
}

#[component]
pub fn CartridgeChart(
    cartridge: Cartridge,
    history: Option<CartridgeHistory>,
    span_s: u32,
) -> impl IntoView {
    let samples = history.map(|h| h.samples).unwrap_or_default();
    let span = f64::from(span_s.max(1));
    let label = format::product_label(&cartridge.product, cartridge.major_version);

    let in_use = series(&samples, span_s, |s| f64::from(s.runcount_in_use));
    let peak = samples.iter().map(|s| s.runcount_in_use).max().unwrap_or(0);
    let runcount_max = f64::from(cartridge.runcount.max(peak));
    let now_in_use = samples.last().map_or(0, |s| s.runcount_in_use);

    // Credits used since the window's first sample.
    let first_used = samples.first().map_or(0, |s| s.used_credits);
    let used = series(&samples, span_s, |s| (s.used_credits - first_used) as f64);
    let used_in_window = samples.last().map_or(0, |s| s.used_credits - first_used);

    let runcount_text = format!(
        "Runcount in use: {now_in_use} of {} now, peak {peak} in the last hour",
        cartridge.runcount
    );
    let credits_text = format!(
        "Credits used in the last hour: {}",
        format::group_digits(used_in_window)
    );
    view! {
        <figure class="chart" data-product-id=cartridge.product_id>
            <figcaption>{label}</figcaption>
            {(cartridge.runcount > 0 || peak > 0)
                .then(|| {
                    series_view(
                        "runcount",
                        runcount_text,
                        step_path(&in_use, span, runcount_max),
                        format!("in use {now_in_use} / {} · peak {peak}", cartridge.runcount),
                    )
                })}
            {(cartridge.credits > 0 || cartridge.postpay || used_in_window > 0)
                .then(|| {
                    series_view(
                        "credits",
                        credits_text,
                        step_path(&used, span, used_in_window as f64),
                        format!(
                            "credits used {} in the last hour",
                            format::group_digits(used_in_window),
                        ),
                    )
                })}
        </figure>
    }
}

/// One series of a chart: its line (`path`) in an SVG that `text` describes to screen readers,
/// and its `figures` below.
fn series_view(class: &'static str, text: String, path: String, figures: String) -> impl IntoView {
    let label = text.clone();
    view! {
        <div class="series">
            <svg
                class=class
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-label=label
                preserveAspectRatio="none"
            >
                <title>{text}</title>
                <line class="axis" x1="0" y1=HEIGHT - 0.5 x2=WIDTH y2=HEIGHT - 0.5 />
                <path class="line" d=path />
            </svg>
            <p>{figures}</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_path_spans_the_window_and_scales_to_the_maximum() {
        let path = step_path(&[(0.0, 0.0), (1800.0, 4.0), (3600.0, 8.0)], 3600.0, 8.0);
        assert_eq!(path, "M0.0 47.0 H120.0 V24.0 H240.0 V1.0");
    }

    #[test]
    fn values_above_the_maximum_stay_inside_the_chart() {
        let path = step_path(&[(-10.0, 20.0)], 3600.0, 8.0);
        assert_eq!(path, "M0.0 1.0");
    }
}
