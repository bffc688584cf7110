//! The Licenses screen's table: sortable headers, the filter, one row per license or issue, and
//! the drawer of the row the address names (see [`super::licenses`]).

use leptos::prelude::*;
use time::OffsetDateTime;

use super::{
    license_drawer::Drawer,
    licenses::{LicenseList, Row, Sort, View, order},
    task::Task,
};
use crate::{
    clock,
    format::{self, Expiry, plural},
    table::actions_header,
};

#[component]
pub fn LicenseTable(
    loaded: LicenseList,
    view_state: Memo<View>,
    show: impl Fn(View) + Clone + Send + Sync + 'static,
    just_installed: RwSignal<Option<String>>,
    removing: Task,
    remove: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let LicenseList {
        rows,
        users,
        complete,
    } = loaded;
    let total = rows.len();
    let all = StoredValue::new(rows);
    let shown = Memo::new(move |_| {
        let view = view_state.get();
        let mut rows: Vec<Row> = all.with_value(|rows| {
            rows.iter()
                .filter(|r| r.shows(&view.filter))
                .cloned()
                .collect()
        });
        rows.sort_by(|a, b| order(view.sort, a, b));
        if view.descending {
            rows.reverse();
        }
        rows
    });
    let open = Memo::new(move |_| {
        view_state
            .with(|v| v.show.clone())
            .and_then(|id| all.with_value(|rows| rows.iter().find(|r| r.id() == id).cloned()))
    });
    let header = {
        let show = show.clone();
        move |sort: Sort, label: &'static str| {
            let show = show.clone();
            let aria = move || {
                view_state.with(|v| match (v.sort == sort, v.descending) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                })
            };
            let click = move |_| {
                let mut next = view_state.get_untracked();
                next.descending = next.sort == sort && !next.descending;
                next.sort = sort;
                show(next);
            };
            view! {
                <th scope="col" aria-sort=aria>
                    <button type="button" class="sort" on:click=click>
                        {label}
                    </button>
                </th>
            }
        }
    };
    let filter = {
        let show = show.clone();
        move |ev| {
            let mut next = view_state.get_untracked();
            next.filter = event_target_value(&ev);
            show(next);
        }
    };
    let close = {
        let show = show.clone();
        move || {
            let mut next = view_state.get_untracked();
            next.show = None;
            show(next);
        }
    };
    let open_row = {
        let show = show.clone();
        move |id: String| {
            let mut next = view_state.get_untracked();
            next.show = Some(id);
            show(next);
        }
    };
    view! {
        <div class="table-tools">
            <label for="license-filter" class="visually-hidden">
                "Filter licenses"
            </label>
            <input
                id="license-filter"
                type="search"
                placeholder="Filter by key, product or serial"
                prop:value=move || view_state.with(|v| v.filter.clone())
                on:input=filter
            />
            <p class="count">
                {move || {
                    let n = shown.with(Vec::len);
                    if n == total {
                        format!("{total} {}", plural(total as u64, "license", "licenses"))
                    } else {
                        format!("{n} of {total} licenses")
                    }
                }}
            </p>
        </div>
        {(!complete)
            .then(|| {
                view! {
                    <p class="hint">
                        "The server is still reading its ledger: older removed licenses may be missing."
                    </p>
                }
            })}
        <div class="table-wrap" tabindex="0">
            <table class="licenses" aria-labelledby="licenses-title">
                <thead>
                    <tr>
                        {header(Sort::Key, "Key")}
                        <th scope="col">"Products"</th>
                        {header(Sort::Serial, "Serial")}
                        <th scope="col">"Seats / credits"</th>
                        <th scope="col">"Users"</th>
                        {header(Sort::Issued, "Issued")}
                        {header(Sort::Expires, "Expires")}
                        {header(Sort::Status, "Status")}
                        {actions_header()}
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || shown.get()
                        key=|row| (row.id(), row.status)
                        children=move |row| {
                            let new = just_installed
                                .with_untracked(|k| row.installed() && k.as_deref() == Some(&row.key));
                            license_row(row, users, new, open_row.clone())
                        }
                    />
                </tbody>
            </table>
        </div>
        {move || {
            open.get()
                .map(|row| {
                    view! { <Drawer row users removing remove close=close.clone() /> }
                })
        }}
    }
}

/// The users column: for the active license, how many are counted against its limit.
pub fn users_text(row: &Row, users: Option<u64>) -> String {
    let max = row.license.as_ref().and_then(|l| l.rules.max_users);
    match (row.current, users, max) {
        (true, Some(n), Some(max)) => format!("{n} of {max}"),
        (true, Some(n), None) => format!("{n}, no limit"),
        (_, _, Some(max)) => format!("up to {max}"),
        (_, _, None) => "no limit".to_owned(),
    }
}

/// `t`'s day in the browser's zone: the table's dates (the drawer has the time).
fn day(t: OffsetDateTime) -> String {
    clock::local(t).chars().take(10).collect()
}

/// The expiry's text and class, the moment written by `when`.
pub fn expiry_text(row: &Row, when: fn(OffsetDateTime) -> String) -> (String, &'static str) {
    let Some(license) = &row.license else {
        return ("—".to_owned(), "");
    };
    let expires = license.rules.expires;
    match (expires, format::expiry(expires, clock::now())) {
        (_, Expiry::Never) | (None, _) => ("never".to_owned(), ""),
        (Some(at), Expiry::Later) => (when(at), ""),
        (Some(at), Expiry::Soon(days)) => (
            format!(
                "{} (in {days} {})",
                when(at),
                plural(days.unsigned_abs(), "day", "days")
            ),
            "warn",
        ),
        (Some(at), Expiry::Expired) => (when(at), if row.installed() { "bad" } else { "" }),
    }
}

fn license_row(
    row: Row,
    users: Option<u64>,
    new: bool,
    open: impl Fn(String) + 'static,
) -> impl IntoView {
    let (expires, expiry_class) = expiry_text(&row, day);
    let products = row.products();
    let id = row.id();
    let label = format!("Details of license {}", row.key);
    view! {
        <tr data-key=row.key.clone() data-status=row.status.label() class:new=new class:gone=!row.installed()>
            <th scope="row" class="mono">
                {row.key.clone()}
            </th>
            <td title=products.join("\n")>{products.join(", ")}</td>
            <td class="num">{row.serial}</td>
            <td>{row.grants()}</td>
            <td>{users_text(&row, users)}</td>
            <td title=row.issued().map(clock::local)>
                {row.issued().map_or_else(|| "—".to_owned(), day)}
            </td>
            <td class=expiry_class title=row.expires().map(clock::local)>
                {expires}
            </td>
            <td>
                <span class=row.status.class()>{row.status.label()}</span>
                {new.then(|| view! { <span class="badge">"new"</span> })}
            </td>
            <td class="actions">
                <button type="button" aria-label=label on:click=move |_| open(id.clone())>
                    "Details"
                </button>
            </td>
        </tr>
    }
}
