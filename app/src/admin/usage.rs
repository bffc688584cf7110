//! Usage: who used what, when, and what was refused, over a day, a week, a month, a year or any
//! range, from the server's usage report (`GET /server/manage/usage`), which folds the ledger on
//! the server: the browser never reads the ledger itself.
//!
//! Everything the screen shows is chosen in its address (`?range=month&product=7&host=ci-3`), so
//! a view can be bookmarked, shared, and gone back to.

use leptos::prelude::*;
use leptos_router::{hooks::use_navigate, hooks::use_query_map, params::ParamsMap};
use models::{UsageReport, UsageStep};
use time::OffsetDateTime;

use super::{
    shell::Shell,
    task::on_submit,
    usage_tables::{CartridgeTable, PartyTable, RefusalTable, csv},
};
use crate::{
    address, api,
    auth::Auth,
    clock,
    download::save_as,
    feedback::{done_message, error_message},
    usage_chart::{Buckets, Line, MOST_LINES, UsageChart, utc_offset_minutes},
};

const USAGE_PATH: &str = "/admin/usage";

/// The ranges offered: name in the address, button text, length in days.
const RANGES: &[(&str, &str, i64)] = &[
    ("day", "Last 24 hours", 1),
    ("week", "Last 7 days", 7),
    ("month", "Last 30 days", 30),
    ("year", "Last 365 days", 365),
];

/// What the screen shows, as its address says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// One of [`RANGES`], or `custom` (with `from` and `to`).
    pub range: String,
    pub from: String,
    pub to: String,
    /// `None`: every pool; `Some("")`: the default pool.
    pub pool: Option<String>,
    pub product: Option<u32>,
    pub host: String,
    pub realm: String,
    pub principal: String,
}

impl Choice {
    pub fn from_query(query: &ParamsMap) -> Self {
        let text = |key: &str| query.get(key).unwrap_or_default();
        let range = text("range");
        Self {
            range: if range == "custom" || RANGES.iter().any(|(r, _, _)| *r == range) {
                range
            } else {
                "week".to_owned()
            },
            from: text("from"),
            to: text("to"),
            pool: query.get("pool"),
            product: query.get("product").and_then(|p| p.parse().ok()),
            host: text("host"),
            realm: text("realm"),
            principal: text("principal"),
        }
    }

    /// The host and user chosen, as query pairs (none when not chosen).
    fn party(&self) -> Vec<(&'static str, String)> {
        [
            ("host", &self.host),
            ("realm", &self.realm),
            ("principal", &self.principal),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key, value.clone()))
        .collect()
    }

    /// The address's query (`?range=…`), without what is at its default.
    pub fn address(&self) -> String {
        let mut pairs = vec![("range", self.range.clone())];
        if self.range == "custom" {
            pairs.push(("from", self.from.clone()));
            pairs.push(("to", self.to.clone()));
        }
        pairs.extend(self.pool.clone().map(|p| ("pool", p)));
        pairs.extend(self.product.map(|p| ("product", p.to_string())));
        pairs.extend(self.party());
        address::query(&pairs)
    }

    /// The report's query for this choice at `now`, days at `offset` minutes from UTC.
    pub fn report_query(&self, now: OffsetDateTime, offset: i32) -> String {
        let mut pairs = vec![("utc_offset", offset.to_string())];
        match RANGES.iter().find(|(r, _, _)| *r == self.range) {
            // Up to a week: the last hours, by the hour. Beyond: whole days, today the last.
            Some((_, _, days)) if *days <= 7 => {
                pairs.push(("from", rfc3339(now - time::Duration::days(*days))));
                // Said, not left to the server's default: "now" there is a moment later, and a
                // range a second over 7 days would be by the day.
                pairs.push(("step", "hour".to_owned()));
            }
            Some((_, _, days)) => {
                let today = now
                    .to_offset(
                        time::UtcOffset::from_whole_seconds(offset * 60)
                            .unwrap_or(time::UtcOffset::UTC),
                    )
                    .date();
                pairs.push(("from", (today - time::Duration::days(days - 1)).to_string()));
                pairs.push(("step", "day".to_owned()));
            }
            None => {
                pairs.push(("from", self.from.clone()));
                pairs.push(("to", self.to.clone()));
            }
        }
        pairs.extend(self.pool.clone().map(|p| ("pool", p)));
        pairs.extend(self.product.map(|p| ("product_id", p.to_string())));
        pairs.extend(self.party());
        if !self.host.is_empty() || !self.principal.is_empty() || !self.realm.is_empty() {
            pairs.retain(|(k, _)| *k != "step");
        }
        address::query(&pairs)
    }
}

/// `t` in RFC 3339, UTC, to the second.
fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[component]
pub fn UsageScreen() -> impl IntoView {
    view! {
        <Shell title="Usage">
            <UsageBody />
        </Shell>
    }
}

#[component]
fn UsageBody() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let choice = Memo::new(move |_| query.with(Choice::from_query));
    let report = LocalResource::new(move || {
        let asked = choice
            .get()
            .report_query(clock::now(), utc_offset_minutes());
        async move {
            api::usage(auth.tokens().as_ref(), &asked)
                .await
                .map_err(|e| auth.fail(&e))
        }
    });
    // The cartridges of every report seen, so the product list keeps what a filter hides.
    let known = RwSignal::new(Vec::<(Option<String>, u32, String)>::new());
    Effect::new(move || {
        if let Some(Ok(report)) = report.get() {
            known.update(|known| {
                for c in &report.cartridges {
                    let entry = (c.pool.clone(), c.product_id, c.product.clone());
                    if !known.contains(&entry) {
                        known.push(entry);
                    }
                }
                known.sort();
            });
        }
    });
    let navigate = use_navigate();
    let show =
        move |next: Choice| address::show(&navigate, &format!("{USAGE_PATH}{}", next.address()));
    view! {
        <Controls choice show=show.clone() known />
        {move || match report.get() {
            None => view! { <p class="placeholder">"Loading…"</p> }.into_any(),
            Some(Err(message)) => error_message(message).into_any(),
            Some(Ok(report)) => {
                let show = show.clone();
                let choose = move |host: Option<String>, user: Option<models::User>| {
                    let mut next = choice.get_untracked();
                    next.host = host.unwrap_or_default();
                    next.realm = user.as_ref().map(|u| u.realm.clone()).unwrap_or_default();
                    next.principal = user.map(|u| u.principal).unwrap_or_default();
                    show(next);
                };
                view! { <Report report choose /> }.into_any()
            }
        }}
    }
}

/// The range buttons and the filters.
#[component]
fn Controls(
    choice: Memo<Choice>,
    show: impl Fn(Choice) + Clone + Send + Sync + 'static,
    known: RwSignal<Vec<(Option<String>, u32, String)>>,
) -> impl IntoView {
    let host = RwSignal::new(String::new());
    let principal = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    Effect::new(move || {
        let c = choice.get();
        host.set(c.host);
        principal.set(c.principal);
        let today = clock::now().date();
        from.set(if c.from.is_empty() {
            (today - time::Duration::days(7)).to_string()
        } else {
            c.from
        });
        to.set(if c.to.is_empty() {
            today.to_string()
        } else {
            c.to
        });
    });
    let (show_range, show_custom, show_product, show_filters, show_clear) =
        (show.clone(), show.clone(), show.clone(), show.clone(), show);
    view! {
        <section class="panel usage-controls" aria-label="What to show">
            <div class="ranges" role="group" aria-label="Range">
                {RANGES
                    .iter()
                    .map(|(name, text, _)| {
                        let show = show_range.clone();
                        view! {
                            <button
                                type="button"
                                aria-pressed=move || (choice.get().range == *name).to_string()
                                on:click=move |_| {
                                    let mut next = choice.get_untracked();
                                    next.range = (*name).to_owned();
                                    show(next);
                                }
                            >
                                {*text}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            <form
                class="custom-range"
                on:submit=on_submit(move || {
                    let mut next = choice.get_untracked();
                    next.range = "custom".to_owned();
                    next.from = from.get_untracked();
                    next.to = to.get_untracked();
                    show_custom(next);
                })
            >
                <label>"From" <input type="date" bind:value=from required /></label>
                <label>"To (not included)" <input type="date" bind:value=to required /></label>
                <button type="submit">"Show range"</button>
            </form>
            <form
                class="usage-filters"
                on:submit=on_submit(move || {
                    let mut next = choice.get_untracked();
                    next.host = host.get_untracked().trim().to_owned();
                    next.principal = principal.get_untracked().trim().to_owned();
                    if next.principal.is_empty() {
                        next.realm.clear();
                    }
                    show_filters(next);
                })
            >
                <label>
                    "Product"
                    <select on:change=move |e| {
                        let value = event_target_value(&e);
                        let mut next = choice.get_untracked();
                        let (pool, product) = value.split_once('/').unwrap_or(("*", ""));
                        next.pool = (pool != "*").then(|| pool.to_owned());
                        next.product = product.parse().ok();
                        show_product(next);
                    }>
                        <option value="*/" selected=move || choice.get().product.is_none()>
                            "Every product"
                        </option>
                        {move || {
                            known
                                .get()
                                .into_iter()
                                .map(|(pool, id, name)| {
                                    let value = format!("{}/{id}", pool.clone().unwrap_or_default());
                                    let text = match &pool {
                                        Some(pool) => format!("{name} ({id}) in pool {pool}"),
                                        None => format!("{name} ({id})"),
                                    };
                                    let selected = move || {
                                        let c = choice.get();
                                        c.product == Some(id)
                                            && c.pool.as_deref().unwrap_or_default()
                                                == pool.as_deref().unwrap_or_default()
                                    };
                                    view! { <option value=value selected=selected>{text}</option> }
                                })
                                .collect_view()
                        }}
                    </select>
                </label>
                <label>"Host" <input type="text" maxlength="255" bind:value=host placeholder="every host" /></label>
                <label>"User" <input type="text" maxlength="256" bind:value=principal placeholder="every user" /></label>
                <button type="submit">"Filter"</button>
                <button
                    type="button"
                    on:click=move |_| {
                        let mut next = choice.get_untracked();
                        next.pool = None;
                        next.product = None;
                        next.host.clear();
                        next.realm.clear();
                        next.principal.clear();
                        show_clear(next);
                    }
                >
                    "Clear filters"
                </button>
            </form>
        </section>
    }
}

/// The charts and tables of one report.
#[component]
fn Report(
    report: UsageReport,
    choose: impl Fn(Option<String>, Option<models::User>) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let step = report.step.seconds();
    let buckets = Buckets {
        from: report.from,
        step,
        count: report.buckets as usize,
    };
    let by = match report.step {
        UsageStep::Hour => "by the hour",
        UsageStep::Day => "by the day",
    };
    let mut in_use: Vec<Line> = report
        .cartridges
        .iter()
        .map(|c| Line {
            label: cartridge_name(c),
            values: match &c.series.peak {
                Some(peak) => peak.iter().map(|v| f64::from(*v)).collect(),
                None => c
                    .series
                    .held_seconds
                    .iter()
                    .map(|s| *s as f64 / step as f64)
                    .collect(),
            },
            dashed: false,
        })
        .collect();
    if let [only] = report.cartridges.as_slice()
        && let Some(runcount) = only.runcount.filter(|r| *r > 0)
    {
        in_use.push(Line {
            label: format!("licensed: {runcount}"),
            values: vec![f64::from(runcount); buckets.count],
            dashed: true,
        });
    }
    let in_use_title = if report.cartridges.iter().any(|c| c.series.peak.is_some()) {
        "Licenses in use (most at once)"
    } else {
        "Licenses in use (average)"
    };
    let total = |pick: fn(&models::UsageSeries) -> &Vec<u64>| -> Vec<f64> {
        (0..buckets.count)
            .map(|i| {
                report
                    .cartridges
                    .iter()
                    .map(|c| pick(&c.series).get(i).copied().unwrap_or(0) as f64)
                    .sum()
            })
            .collect()
    };
    let grants = vec![
        Line {
            label: "granted".to_owned(),
            values: total(|s| &s.grants),
            dashed: false,
        },
        Line {
            label: "refused".to_owned(),
            values: total(|s| &s.refusals),
            dashed: false,
        },
    ];
    let credits: Vec<Line> = report
        .cartridges
        .iter()
        .filter(|c| c.credits_used > 0)
        .map(|c| Line {
            label: cartridge_name(c),
            values: c.series.credits.iter().map(|v| *v as f64).collect(),
            dashed: false,
        })
        .collect();
    let many = (report.cartridges.len() > MOST_LINES).then(|| {
        format!(
            "The charts show the first {MOST_LINES} of {} cartridges; choose a product to see another.",
            report.cartridges.len()
        )
    });
    let through = report
        .through
        .map(|t| format!(" Figures include the ledger up to {}.", clock::local(t)))
        .unwrap_or_default();
    let catching_up = (!report.complete).then(|| {
        view! {
            <p class="notice" role="status">
                "The server is still reading its ledger into the usage history; these figures cover what it has read so far."
            </p>
        }
    });
    let file = format!(
        "usage-{}.csv",
        clock::local(report.from).replace([' ', ':'], "-")
    );
    let text = csv(&report);
    let saved = RwSignal::new(false);
    let empty = report.cartridges.is_empty();
    view! {
        <section class="panel" aria-labelledby="usage-title">
            <h3 id="usage-title">
                {format!(
                    "From {} to {}, {by}",
                    clock::local(report.from),
                    clock::local(report.to),
                )}
            </h3>
            <p class="hint">{through}</p>
            {catching_up}
            {many.map(|m| view! { <p class="hint">{m}</p> })}
            <div class="usage-actions">
                <button
                    type="button"
                    id="usage-csv"
                    on:click=move |_| saved.set(save_as(&file, "text/csv", &text))
                >
                    "Download CSV"
                </button>
                {move || saved.get().then(|| done_message("Saved the CSV.".to_owned()))}
            </div>
            {if empty {
                view! { <p class="placeholder">"No license was granted or refused in this range."</p> }
                    .into_any()
            } else {
                view! {
                    <div class="usage-charts">
                        <UsageChart id="chart-in-use" title=in_use_title.to_owned() unit="licenses" buckets lines=in_use />
                        <UsageChart id="chart-grants" title="Grants and refusals".to_owned() unit="requests" buckets lines=grants />
                        {(!credits.is_empty()).then(|| view! {
                            <UsageChart id="chart-credits" title="Credits used".to_owned() unit="credits" buckets lines=credits />
                        })}
                    </div>
                }
                    .into_any()
            }}
        </section>
        <CartridgeTable report=report.clone() />
        <RefusalTable refusals=report.refusals.clone() />
        <PartyTable title="Busiest hosts" id="usage-hosts" parties=report.hosts.clone() total=report.hosts_total choose=choose.clone() />
        <PartyTable title="Busiest users" id="usage-users" parties=report.users.clone() total=report.users_total choose />
    }
}

/// A cartridge's name in a legend: product, version, and pool if not the default.
pub fn cartridge_name(c: &models::UsageCartridge) -> String {
    let name = crate::format::product_label(&c.product, c.major_version);
    match &c.pool {
        Some(pool) => format!("{name} ({pool})"),
        None => name,
    }
}
