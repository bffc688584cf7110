//! The usage screen's tables (per cartridge, refusals by reason, the busiest hosts and users) and
//! its CSV download.

use leptos::prelude::*;
use models::{UsageParty, UsageRefusals, UsageReport, User};

use super::usage::cartridge_name;
use crate::format::group_digits;

/// License time in hours with one decimal: `12.5 h`.
pub fn hours(seconds: u64) -> String {
    let tenths = seconds * 10 / 3600;
    format!("{}.{} h", group_digits((tenths / 10) as i64), tenths % 10)
}

fn count(n: u64) -> String {
    group_digits(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Why a request was refused, in words.
pub fn reason_text(reason: &str) -> &'static str {
    match reason {
        "no_seat_free" => "Every seat was taken",
        "waited_out" => "Waited for a seat, none came free",
        "unknown_product" => "No license for the product",
        "wrong_pool" => "The product is in other pools only",
        "no_version" => "No license for that version",
        "credits_exhausted" => "Prepaid credits used up",
        "user_limit" => "User limit reached (session refused)",
        _ => "Reason not recorded",
    }
}

#[component]
pub fn CartridgeTable(report: UsageReport) -> impl IntoView {
    let with_peak = report.cartridges.iter().any(|c| c.peak.is_some());
    let rows = report
        .cartridges
        .iter()
        .map(|c| {
            let lasts = match (c.credits_left, c.days_left) {
                (Some(_), Some(days)) => format!("~{} days at this rate", count(days)),
                (Some(_), None) => "not used in this range".to_owned(),
                (None, _) => "—".to_owned(),
            };
            view! {
                <tr>
                    <td>{cartridge_name(c)}</td>
                    <td class="num">{c.runcount.map_or_else(|| "removed".to_owned(), |r| r.to_string())}</td>
                    {with_peak.then(|| view! { <td class="num">{c.peak.unwrap_or(0)}</td> })}
                    <td class="num">{hours(c.held_seconds)}</td>
                    <td class="num">{count(c.grants)}</td>
                    <td class="num">{count(c.refusals)}</td>
                    <td class="num">{count(c.credits_used)}</td>
                    <td class="num">{c.credits_left.map_or_else(|| "—".to_owned(), group_digits)}</td>
                    <td>{lasts}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="usage-cartridges-title">
            <h3 id="usage-cartridges-title">"Per product"</h3>
            <div class="table-wrap" tabindex="0">
                <table id="usage-cartridges" aria-labelledby="usage-cartridges-title">
                    <thead>
                        <tr>
                            <th scope="col">"Product"</th>
                            <th scope="col" class="num">"Seats licensed"</th>
                            {with_peak.then(|| view! { <th scope="col" class="num">"Most at once"</th> })}
                            <th scope="col" class="num">"License time"</th>
                            <th scope="col" class="num">"Grants"</th>
                            <th scope="col" class="num">"Refusals"</th>
                            <th scope="col" class="num">"Credits used"</th>
                            <th scope="col" class="num">"Credits left"</th>
                            <th scope="col">"Credits last"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
pub fn RefusalTable(refusals: Vec<UsageRefusals>) -> impl IntoView {
    let most = refusals.iter().map(|r| r.refusals).max().unwrap_or(0);
    view! {
        <section class="panel" aria-labelledby="usage-refusals-title">
            <h3 id="usage-refusals-title">"Refusals by reason"</h3>
            {if refusals.is_empty() {
                view! { <p class="placeholder">"Nothing was refused in this range (refusals are not kept per host or user)."</p> }
                    .into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0">
                        <table id="usage-refusals" aria-labelledby="usage-refusals-title">
                            <thead>
                                <tr>
                                    <th scope="col">"Reason"</th>
                                    <th scope="col" class="num">"Refusals"</th>
                                    <th scope="col">"Share"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {refusals
                                    .iter()
                                    .map(|r| {
                                        let share = r.refusals * 100 / most.max(1);
                                        view! {
                                            <tr data-reason=r.reason.clone()>
                                                <td>{reason_text(&r.reason)}</td>
                                                <td class="num">{count(r.refusals)}</td>
                                                <td>
                                                    <progress max="100" value=share aria-label=format!("{share}% of the most frequent reason")></progress>
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
}

/// A host's or user's name as the table shows it.
fn party_name(party: &UsageParty) -> String {
    match (&party.host, &party.user) {
        (Some(host), _) => host.clone(),
        (None, Some(User { realm, principal })) => format!("{principal} ({realm})"),
        (None, None) => "no user named".to_owned(),
    }
}

#[component]
pub fn PartyTable(
    title: &'static str,
    id: &'static str,
    parties: Vec<UsageParty>,
    total: u64,
    choose: impl Fn(Option<String>, Option<User>) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let title_id = format!("{id}-title");
    let table_label = title_id.clone();
    let shown = format!("{} of {}", parties.len(), count(total));
    view! {
        <section class="panel" aria-labelledby=title_id.clone()>
            <h3 id=title_id.clone()>{title} " " <span class="count">{shown}</span></h3>
            {if parties.is_empty() {
                view! { <p class="placeholder">"None in this report."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0">
                        <table id=id aria-labelledby=table_label>
                            <thead>
                                <tr>
                                    <th scope="col">"Name"</th>
                                    <th scope="col" class="num">"License time"</th>
                                    <th scope="col" class="num">"Grants"</th>
                                    <th scope="col" class="num">"Credits used"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {parties
                                    .into_iter()
                                    .map(|p| {
                                        let name = party_name(&p);
                                        let choose = choose.clone();
                                        let (host, user) = (p.host.clone(), p.user.clone());
                                        let unnamed = host.is_none() && user.is_none();
                                        view! {
                                            <tr>
                                                <td>
                                                    {if unnamed {
                                                        view! { <span>{name}</span> }.into_any()
                                                    } else {
                                                        view! {
                                                            <button
                                                                type="button"
                                                                class="link"
                                                                title="Show only this one"
                                                                on:click=move |_| choose(host.clone(), user.clone())
                                                            >
                                                                {name}
                                                            </button>
                                                        }
                                                            .into_any()
                                                    }}
                                                </td>
                                                <td class="num">{hours(p.held_seconds)}</td>
                                                <td class="num">{count(p.grants)}</td>
                                                <td class="num">{count(p.credits_used)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
}

/// A CSV cell: quoted when it must be, and never read as a formula by a spreadsheet.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The report's series as CSV: one row per cartridge and bucket, as the charts show them.
pub fn csv(report: &UsageReport) -> String {
    let mut out = String::from(
        "start,pool,product_id,major_version,product,most_in_use,average_in_use,grants,refusals,credits_used\n",
    );
    let step = report.step.seconds();
    for c in &report.cartridges {
        for i in 0..report.buckets as usize {
            let start = report.from + time::Duration::seconds(step * i as i64);
            let held = c.series.held_seconds.get(i).copied().unwrap_or(0);
            let hundredths = held * 100 / u64::try_from(step).unwrap_or(1);
            let peak = c
                .series
                .peak
                .as_ref()
                .and_then(|p| p.get(i))
                .map(u32::to_string)
                .unwrap_or_default();
            let at = |v: &Vec<u64>| v.get(i).copied().unwrap_or(0);
            out.push_str(&format!(
                "{},{},{},{},{},{peak},{}.{:02},{},{},{}\n",
                start
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                cell(c.pool.as_deref().unwrap_or_default()),
                c.product_id,
                c.major_version,
                cell(&c.product),
                hundredths / 100,
                hundredths % 100,
                at(&c.series.grants),
                at(&c.series.refusals),
                at(&c.series.credits),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_have_one_decimal_and_cells_are_never_formulas() {
        assert_eq!(hours(0), "0.0 h");
        assert_eq!(hours(5400), "1.5 h");
        assert_eq!(hours(36_000_000), "10\u{202F}000.0 h");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
    }
}
