//! The status page's charts: per cartridge, the last 24 hours by the hour from
//! `/status/history.json`, which the server reads from its usage history (so a restart loses
//! nothing): the most licenses held at once against the seats licensed, and the credits used.
//! Drawn by the usage screen's [`UsageChart`], with its axes, legend and hover values.

use leptos::prelude::*;
use models::{Cartridge, CartridgeHistory, HISTORY_HOURS};
use time::OffsetDateTime;

use crate::{
    format,
    usage_chart::{Buckets, Line, UsageChart},
};

/// `values` as the chart's numbers, one per hour (missing hours are 0).
fn hourly<T: Copy + Into<f64>>(values: &[T]) -> Vec<f64> {
    (0..HISTORY_HOURS)
        .map(|i| values.get(i).map_or(0.0, |v| (*v).into()))
        .collect()
}

/// Whether a cartridge has anything to draw in a chart of seats, or of credits.
pub fn shows(cartridge: &Cartridge, history: Option<&CartridgeHistory>) -> (bool, bool) {
    let peaked = history.is_some_and(|h| h.peak.iter().any(|p| *p > 0));
    let debited = history.is_some_and(|h| h.credits.iter().any(|c| *c > 0));
    (
        cartridge.runcount > 0 || peaked,
        cartridge.credits > 0 || cartridge.postpay || debited,
    )
}

#[component]
pub fn CartridgeChart(
    cartridge: Cartridge,
    history: Option<CartridgeHistory>,
    hours_from: OffsetDateTime,
) -> impl IntoView {
    let label = format::product_label(&cartridge.product, cartridge.major_version);
    let (seats, credits) = shows(&cartridge, history.as_ref());
    let buckets = Buckets {
        from: hours_from,
        step: 3600,
        count: HISTORY_HOURS,
    };
    let (peak, used) = history.map(|h| (h.peak, h.credits)).unwrap_or_default();
    let used: Vec<u32> = used
        .iter()
        .map(|c| u32::try_from(*c).unwrap_or(u32::MAX))
        .collect();
    let id = format!("chart-{}-{}", cartridge.product_id, cartridge.major_version);
    let in_use = vec![
        Line {
            label: "most in use".to_owned(),
            values: hourly(&peak),
            dashed: false,
        },
        Line {
            label: "licensed".to_owned(),
            values: vec![f64::from(cartridge.runcount); HISTORY_HOURS],
            dashed: true,
        },
    ];
    let debits = vec![Line {
        label: "credits used".to_owned(),
        values: hourly(&used),
        dashed: false,
    }];
    view! {
        <div class="cartridge-charts" data-product-id=cartridge.product_id>
            <h3>{label}</h3>
            {seats
                .then(|| {
                    view! {
                        <UsageChart
                            id=format!("{id}-seats")
                            title="Licenses in use, most at once per hour".to_owned()
                            unit="licenses"
                            buckets
                            lines=in_use
                        />
                    }
                })}
            {credits
                .then(|| {
                    view! {
                        <UsageChart
                            id=format!("{id}-credits")
                            title="Credits used per hour".to_owned()
                            unit="credits"
                            buckets
                            lines=debits
                        />
                    }
                })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_hours_are_zero_and_extra_ones_dropped() {
        assert_eq!(hourly(&[1_u32, 2])[..3], [1.0, 2.0, 0.0]);
        assert_eq!(hourly(&[1_u32; 30]).len(), HISTORY_HOURS);
    }
}
