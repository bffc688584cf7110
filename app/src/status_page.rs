//! The status page: Servers, Cartridges and Sessions, as in `shared/spec/status.md`.
//!
//! The server pushes the status document as it changes (`live`, `/status/events`); while that
//! stream is down, the page polls `/status/data.json` every few seconds (`poll`). The charts'
//! history is fetched every time the server samples it. The page never blanks what it shows while it
//! waits: each table is a memo over the last good document, so an unchanged table is not touched
//! at all, and the keyed rows of a changed table are replaced one by one (no flicker). When the
//! server cannot be reached, the last data stays on screen, dimmed, under a banner saying so.

use std::hash::Hash;

use leptos::prelude::*;
use models::{Build, Cartridge, History, Server, StatusData};
use time::OffsetDateTime;

use crate::{
    address, api,
    chart::CartridgeChart,
    clock::{self, local_offset, now, timestamp},
    format, live,
    paths::{LICENSES_PATH, STATUS_PATH},
    poll::{self, REFRESH},
    pool_field::PoolField,
    sessions_table::SessionsTable,
};

#[component]
pub fn StatusPage() -> impl IntoView {
    let data = RwSignal::new(None::<StatusData>);
    let error = RwSignal::new(None::<api::Error>);
    let updated = RwSignal::new(None::<OffsetDateTime>);
    let history = RwSignal::new(None::<History>);
    // The cartridge pool shown; `?pool=NAME` in the address, so a view can be bookmarked and
    // shared. Empty: the default pool.
    let query = leptos_router::hooks::use_query_map();
    let pool = RwSignal::new(query.with_untracked(|q| q.get("pool").unwrap_or_default()));
    let live = live::connect(pool.into());
    let shown = Shown {
        data,
        error,
        updated,
        pool,
    };
    leptos::task::spawn_local(refresh(shown));
    leptos::task::spawn_local(refresh_history(history, pool));
    // Polled only while the stream is down; asked at once when it breaks, so that a server that
    // went away says so now.
    poll::every_refresh(move || {
        let poll = !live.connected.get_untracked();
        async move {
            if poll {
                refresh(shown).await;
            }
        }
    });
    Effect::new(move |previous: Option<u64>| {
        let broke = live.broke.get();
        if previous.is_some_and(|p| p != broke) {
            leptos::task::spawn_local(refresh(shown));
        }
        broke
    });
    Effect::new(move || {
        live.latest.with(|latest| {
            if let Some(latest) = latest {
                shown.show(latest.document.clone());
            }
        });
    });
    poll::every_visible(HISTORY_REFRESH, move || refresh_history(history, pool));
    let navigate = leptos_router::hooks::use_navigate();
    let choose_pool = move |name: String| {
        if name == pool.get_untracked() {
            return;
        }
        pool.set(name.clone());
        // The sessions table's parameters stay; only the pool changes.
        let to = query.with_untracked(|q| address::with_pool(STATUS_PATH, q, &name));
        address::show(&navigate, &to);
        // Show the new pool's cartridges now, not at the next poll.
        data.set(None);
        history.set(None);
        leptos::task::spawn_local(refresh(shown));
        leptos::task::spawn_local(refresh_history(history, pool));
    };

    let servers = Memo::new(move |_| {
        data.with(|d| {
            d.as_ref().map(|d| {
                let coordinator = d.coordinator();
                d.servers
                    .iter()
                    .map(|s| (s.clone(), s.is_coordinator(coordinator)))
                    .collect::<Vec<_>>()
            })
        })
    });
    let cartridges = Memo::new(move |_| data.with(|d| d.as_ref().map(|d| d.cartridges.clone())));
    let charts = Memo::new(move |_| {
        data.with(|d| {
            let d = d.as_ref()?;
            let from = history.with(|h| h.as_ref().map(|h| h.hours_from))?;
            Some(
                d.cartridges
                    .iter()
                    .map(|c| {
                        let series = history.with(|h| {
                            h.as_ref()?
                                .cartridges
                                .iter()
                                .find(|s| {
                                    s.product_id == c.product_id
                                        && s.major_version == c.major_version
                                })
                                .cloned()
                        });
                        (c.clone(), series, from)
                    })
                    .collect::<Vec<_>>(),
            )
        })
    });
    let loaded = Signal::derive(move || data.with(Option::is_some));

    view! {
        <header class="topbar">
            <h1>"License Server"</h1>
            <PoolField pool choose=choose_pool />
            <nav class="admin-nav">
                <a href=LICENSES_PATH rel="external">
                    "Admin"
                </a>
            </nav>
            <div class="freshness">
                <live::LiveMark live />
                <clock::ZoneNote />
                <p class="updated" aria-live="polite">
                    {move || match updated.get() {
                        Some(t) => format!("Last updated {}", format::time_of_day(t, local_offset(t))),
                        None => "Loading…".to_owned(),
                    }}
                </p>
            </div>
        </header>
        <main class="page" class:stale=move || error.with(Option::is_some)>
            {move || {
                error
                    .get()
                    .map(|e| {
                        view! {
                            <div class="banner error" role="alert">
                                <strong>{format!("{e}.")}</strong>
                                {if loaded.get() {
                                    format!(
                                        " The tables show the last data received; retrying every {} s.",
                                        REFRESH.as_secs(),
                                    )
                                } else {
                                    format!(" Retrying every {} s.", REFRESH.as_secs())
                                }}
                            </div>
                        }
                    })
            }}
            {move || data.with(|d| d.as_ref().and_then(moved_banner))}
            <DataTable
                id="servers"
                title="Servers"
                columns=SERVER_COLUMNS
                rows=servers
                row=server_row
                empty="No servers."
            />
            <DataTable
                id="cartridges"
                title="Cartridges"
                columns=CARTRIDGE_COLUMNS
                rows=cartridges
                row=cartridge_row
                empty="No cartridges: no license is installed for this pool."
            />
            <section class="panel" id="charts" aria-labelledby="charts-title">
                <h2 id="charts-title">"Last 24 hours"</h2>
                <div class="charts">
                    {move || match charts.get() {
                        None => view! { <p class="placeholder">"Loading…"</p> }.into_any(),
                        Some(charts) if charts.is_empty() => {
                            view! { <p class="placeholder">"No cartridges."</p> }.into_any()
                        }
                        Some(charts) => {
                            charts
                                .into_iter()
                                .map(|(cartridge, history, hours_from)| {
                                    view! { <CartridgeChart cartridge history hours_from /> }
                                })
                                .collect_view()
                                .into_any()
                        }
                    }}
                </div>
            </section>
            <section class="panel" id="sessions">
                <h2 id="sessions-title">"Sessions"</h2>
                <SessionsTable pool=pool.into() live />
            </section>
        </main>
    }
}

/// A column header. Numbers are right-aligned so that digits line up.
#[derive(Debug)]
struct Column {
    label: &'static str,
    numeric: bool,
    hint: Option<&'static str>,
    /// The header over this column and its neighbours of the same group.
    group: Option<&'static str>,
}

const fn col(label: &'static str) -> Column {
    Column {
        label,
        numeric: false,
        hint: None,
        group: None,
    }
}

const fn num(label: &'static str) -> Column {
    Column {
        label,
        numeric: true,
        hint: None,
        group: None,
    }
}

/// A session statistic: under the Sessions header, as the reference layout has it.
const fn stat(label: &'static str, hint: &'static str) -> Column {
    Column {
        label,
        numeric: true,
        hint: Some(hint),
        group: Some("Sessions"),
    }
}

const SERVER_COLUMNS: &[Column] = &[
    col("Version"),
    col("Status"),
    col("Hostname"),
    num("Port"),
    col("S/N"),
    col("Started"),
];

const CARTRIDGE_COLUMNS: &[Column] = &[
    col("Product"),
    num("Runcount"),
    num("Credits"),
    stat("Runcount", "runcount licenses granted"),
    stat("Credits", "credit licenses granted"),
    stat("Failures", "license requests refused"),
    stat("Dropped", "sessions that stopped sending heartbeats"),
];

/// The header rows of `columns`: one, or two when some columns are grouped (the group's name
/// spans its columns; the others span both rows).
fn header_rows(columns: &'static [Column]) -> impl IntoView {
    let th = |c: &'static Column, rowspan: Option<usize>| {
        view! {
            <th scope="col" class:num=c.numeric title=c.hint rowspan=rowspan>
                {c.label}
            </th>
        }
    };
    if columns.iter().all(|c| c.group.is_none()) {
        return view! { <tr>{columns.iter().map(|c| th(c, None)).collect_view()}</tr> }.into_any();
    }
    let mut top = Vec::new();
    let mut i = 0;
    while i < columns.len() {
        match columns[i].group {
            None => {
                top.push(th(&columns[i], Some(2)).into_any());
                i += 1;
            }
            Some(group) => {
                let span = columns[i..]
                    .iter()
                    .take_while(|c| c.group == Some(group))
                    .count();
                top.push(view! { <th scope="colgroup" colspan=span>{group}</th> }.into_any());
                i += span;
            }
        }
    }
    view! {
        <tr>{top}</tr>
        <tr>{columns.iter().filter(|c| c.group.is_some()).map(|c| th(c, None)).collect_view()}</tr>
    }
    .into_any()
}

/// A titled table over `rows`: `None` until the first answer ("Loading…"), then one keyed row per
/// item. A row is keyed by its whole value, so an unchanged row keeps its DOM node and a changed
/// one is replaced.
#[component]
fn DataTable<T, V>(
    id: &'static str,
    title: &'static str,
    columns: &'static [Column],
    rows: Memo<Option<Vec<T>>>,
    row: fn(T) -> V,
    empty: &'static str,
) -> impl IntoView
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let title_id = format!("{id}-title");
    let placeholder = move || {
        let text = rows.with(|rows| match rows {
            None => Some("Loading…"),
            Some(rows) if rows.is_empty() => Some(empty),
            Some(_) => None,
        })?;
        Some(view! {
            <tr class="placeholder">
                <td colspan=columns.len()>{text}</td>
            </tr>
        })
    };
    view! {
        <section class="panel" id=id>
            <h2 id=title_id.clone()>{title}</h2>
            <div class="table-wrap" tabindex="0">
                <table aria-labelledby=title_id>
                    <thead>{header_rows(columns)}</thead>
                    <tbody>
                        <For each=move || rows.get().unwrap_or_default() key=T::clone children=row />
                        {placeholder}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// The answering server's data directory came from another machine: both ids, when its licenses
/// stop, and the way out.
fn moved_banner(data: &StatusData) -> Option<impl IntoView + use<>> {
    let server = data.servers.iter().find(|s| s.moved.is_some())?;
    let moved = server.moved.clone()?;
    let stop = clock::local(moved.licenses_stop_at);
    Some(view! {
        <div class="banner warn" role="alert" id="moved-banner">
            <strong>"This server's data directory was moved from another machine."</strong>
            " Its server ID was "
            <span class="mono">{moved.previous_server_id}</span>
            " and is now "
            <span class="mono">{server.server_id.clone()}</span>
            {format!(
                ". Licenses bound to the old ID stop granting at {stop}. To keep them, deactivate them for the old ID at the vendor (Admin → Vendor activation) and activate them for this server, or move the data directory back."
            )}
        </div>
    })
}

fn server_row((server, coordinator): (Server, bool)) -> impl IntoView {
    let status = format::server_status(&server, coordinator);
    let status_class = format!("status {}", status.trim_end_matches('*'));
    // A member that has not answered since this one started: when it started is not known.
    let started = if server.started == OffsetDateTime::UNIX_EPOCH {
        view! { <td>"—"</td> }.into_any()
    } else {
        timestamp(server.started).into_any()
    };
    let where_ = format!("{} · {}", server.ip_address, server.platform);
    // A development build trusts keys given at run time: whoever runs it can sign licenses for it.
    let development = (server.build == Some(Build::Development)).then(|| {
        view! {
            <span
                class="badge warn"
                title="This build trusts vendor keys given at run time, so it can be given licenses nobody sold. Not for production."
            >
                "development build"
            </span>
        }
    });
    view! {
        <tr>
            <td>{server.version} " " {development}</td>
            <td class=status_class>
                {status}
                {coordinator.then(|| view! { <span class="visually-hidden">" (coordinator)"</span> })}
            </td>
            <td title=where_>{server.hostname}</td>
            <td class="num">{server.port}</td>
            <td>{if server.serial_number.is_empty() { "—".to_owned() } else { server.serial_number }}</td>
            {started}
        </tr>
    }
}

fn cartridge_row(cartridge: Cartridge) -> impl IntoView {
    let stats = &cartridge.statistic;
    view! {
        <tr>
            <td title=format::locations(&cartridge)>
                {format::product_label(&cartridge.product, cartridge.major_version)}
                {expiry_note(&cartridge)}
            </td>
            <td class="num">{format::runcount_usage(&cartridge)}</td>
            <td class="num">{format::credit_usage(&cartridge)}</td>
            <td class="num">{format::group_digits(stats.licenses.runcount as i64)}</td>
            <td class="num">{format::group_digits(stats.licenses.credits as i64)}</td>
            <td class="num">{format::group_digits(stats.licenses.failed as i64)}</td>
            <td class="num">{format::group_digits(stats.sessions_dropped as i64)}</td>
        </tr>
    }
}

/// When the first of a cartridge's licenses stops granting, under its name: in the warning colour
/// within [`format::EXPIRY_WARNING_DAYS`].
fn expiry_note(cartridge: &Cartridge) -> Option<impl IntoView + use<>> {
    let at = cartridge.expires()?;
    let (text, warn) = match format::expiry(Some(at), now()) {
        format::Expiry::Soon(days) => (
            format!(
                "expires in {days} {} ({})",
                format::plural(days.unsigned_abs(), "day", "days"),
                clock::local(at)
            ),
            true,
        ),
        _ => (format!("expires {}", clock::local(at)), false),
    };
    Some(view! { <span class="expiry" class:warn=warn>{text}</span> })
}

/// How often the charts' history is fetched: as often as the server samples it.
const HISTORY_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// What the page shows of the status document, and of where it came from.
#[derive(Debug, Clone, Copy)]
struct Shown {
    data: RwSignal<Option<StatusData>>,
    error: RwSignal<Option<api::Error>>,
    updated: RwSignal<Option<OffsetDateTime>>,
    pool: RwSignal<String>,
}

impl Shown {
    fn show(self, fresh: StatusData) {
        // `set` only when changed: unchanged data must not re-render anything.
        if self.data.with_untracked(|d| d.as_ref() != Some(&fresh)) {
            self.data.set(Some(fresh));
        }
        if self.error.with_untracked(Option::is_some) {
            self.error.set(None);
        }
        self.updated.set(Some(now()));
    }
}

/// Fetches the status document of the current pool once and shows it.
async fn refresh(shown: Shown) {
    let name = shown.pool.get_untracked();
    let result = api::status_data(Some(name.as_str()).filter(|n| !n.is_empty())).await;
    if shown.pool.try_get_untracked().as_ref() != Some(&name) {
        // The pool changed (or the page went away) while this was in flight.
        return;
    }
    match result {
        Ok(fresh) => shown.show(fresh),
        Err(e) => shown.error.set(Some(e)),
    }
}

/// Fetches the charts' history of the current pool. The charts are a nicety: when their data does
/// not come, the tables still update, and the next fetch tries again.
async fn refresh_history(history: RwSignal<Option<History>>, pool: RwSignal<String>) {
    let name = pool.get_untracked();
    let fresh = api::history(Some(name.as_str()).filter(|n| !n.is_empty()))
        .await
        .ok();
    if fresh.is_some()
        && pool.try_get_untracked().as_ref() == Some(&name)
        && history.with_untracked(|h| *h != fresh)
    {
        history.set(fresh);
    }
}
