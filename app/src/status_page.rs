//! The status page: Servers, Cartridges and Sessions, as in `shared/spec/status.md`.
//!
//! The page polls `/status/data.json` every few seconds. It never blanks what it shows while it
//! waits: each table is a memo over the last good document, so an unchanged table is not touched
//! at all, and the keyed rows of a changed table are replaced one by one (no flicker). When the
//! server cannot be reached, the last data stays on screen, dimmed, under a banner saying so.

use std::hash::Hash;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use leptos::prelude::*;
use models::{Cartridge, Server, Session, StatusData};
use time::{OffsetDateTime, UtcOffset};
use wasm_bindgen::JsValue;

use crate::{api, format};

/// Time between two polls. Short enough to watch a job start, long enough that a wall of open
/// status pages does not load the server.
const REFRESH: Duration = Duration::from_secs(3);

#[component]
pub fn StatusPage() -> impl IntoView {
    let data = RwSignal::new(None::<StatusData>);
    let error = RwSignal::new(None::<api::Error>);
    let updated = RwSignal::new(None::<OffsetDateTime>);
    // The cartridge pool shown; `?pool=NAME` in the address, so a view can be bookmarked and
    // shared. Empty: the default pool.
    let query = leptos_router::hooks::use_query_map();
    let pool = RwSignal::new(query.with_untracked(|q| q.get("pool").unwrap_or_default()));
    poll(data, error, updated, pool);
    let navigate = leptos_router::hooks::use_navigate();
    let choose_pool = move |name: String| {
        let name = name.trim().to_owned();
        if name == pool.get_untracked() {
            return;
        }
        pool.set(name.clone());
        let query = if name.is_empty() {
            String::new()
        } else {
            format!("?pool={}", js_sys::encode_uri_component(&name))
        };
        navigate(
            &format!("{}{query}", crate::STATUS_PATH),
            leptos_router::NavigateOptions {
                replace: true,
                ..Default::default()
            },
        );
        // Show the new pool's cartridges now, not at the next poll.
        data.set(None);
        leptos::task::spawn_local(refresh(data, error, updated, pool));
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
    let sessions = Memo::new(move |_| data.with(|d| d.as_ref().map(|d| d.sessions.clone())));
    let loaded = Signal::derive(move || data.with(Option::is_some));

    view! {
        <header class="topbar">
            <h1>"License Server"</h1>
            <label class="pool">
                "Pool "
                <input
                    type="search"
                    name="pool"
                    placeholder="default"
                    maxlength="64"
                    prop:value=move || pool.get()
                    on:change=move |ev| choose_pool(event_target_value(&ev))
                />
            </label>
            <p class="updated" aria-live="polite">
                {move || match updated.get() {
                    Some(t) => format!("Last updated {}", format::time_of_day(t, local_offset(t))),
                    None => "Loading…".to_owned(),
                }}
            </p>
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
            <DataTable
                id="sessions"
                title="Sessions"
                columns=SESSION_COLUMNS
                rows=sessions
                row=session_row
                empty="No sessions."
            />
        </main>
    }
}

/// A column header. Numbers are right-aligned so that digits line up.
#[derive(Debug)]
struct Column {
    label: &'static str,
    numeric: bool,
    hint: Option<&'static str>,
}

const fn col(label: &'static str) -> Column {
    Column {
        label,
        numeric: false,
        hint: None,
    }
}

const fn num(label: &'static str) -> Column {
    Column {
        label,
        numeric: true,
        hint: None,
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
    Column {
        hint: Some("runcount licenses granted"),
        ..num("Runcount grants")
    },
    Column {
        hint: Some("credit licenses granted"),
        ..num("Credit grants")
    },
    num("Failures"),
    num("Dropped"),
];

const SESSION_COLUMNS: &[Column] = &[
    num("Session ID"),
    num("Product ID"),
    col("Status"),
    col("Host"),
    col("Product"),
    col("Type"),
    col("Started"),
];

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
            <div class="table-wrap">
                <table aria-labelledby=title_id>
                    <thead>
                        <tr>
                            {columns
                                .iter()
                                .map(|c| {
                                    view! {
                                        <th scope="col" class:num=c.numeric title=c.hint>
                                            {c.label}
                                        </th>
                                    }
                                })
                                .collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || rows.get().unwrap_or_default() key=T::clone children=row />
                        {placeholder}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

fn server_row((server, coordinator): (Server, bool)) -> impl IntoView {
    let status = format::server_status(&server, coordinator);
    let status_class = format!("status {}", status.trim_end_matches('*'));
    let started = timestamp(server.started);
    let where_ = format!("{} · {}", server.ip_address, server.platform);
    view! {
        <tr>
            <td>{server.version}</td>
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

fn session_row(session: Session) -> impl IntoView {
    // A session may hold several licenses: one line each in the license columns.
    let lines = |f: &dyn Fn(&models::HeldLicense) -> String| {
        if session.licenses.is_empty() {
            "—".to_owned()
        } else {
            session
                .licenses
                .iter()
                .map(f)
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let product_ids = lines(&|l| l.product_id.to_string());
    let products = lines(&|l| format::product_label(&l.product, l.major_version));
    let types = lines(&|l| format::license_type(l).to_owned());
    let status = format::session_status(session.status);
    let host_title = if session.message.is_empty() {
        session.ip_address.to_string()
    } else {
        format!("{} · {}", session.ip_address, session.message)
    };
    view! {
        <tr>
            <td class="num">{session.session_id}</td>
            <td class="num lines">{product_ids}</td>
            <td class=format!("status {status}")>{status}</td>
            <td title=host_title>{session.host}</td>
            <td class="lines">{products}</td>
            <td class="lines">{types}</td>
            {timestamp(session.started)}
        </tr>
    }
}

/// A `<td>` with the time in the browser's zone, and the exact RFC 3339 value on hover.
fn timestamp(t: OffsetDateTime) -> impl IntoView {
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
fn local_offset(t: OffsetDateTime) -> UtcOffset {
    let millis = (t.unix_timestamp_nanos() / 1_000_000) as f64;
    // JavaScript counts the offset in minutes, west of UTC positive.
    let west_minutes = js_sys::Date::new(&JsValue::from_f64(millis)).get_timezone_offset();
    UtcOffset::from_whole_seconds(-(west_minutes as i32) * 60).unwrap_or(UtcOffset::UTC)
}

fn now() -> OffsetDateTime {
    let nanos = (js_sys::Date::now() * 1_000_000.0) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Whether the tab is in the background: then there is no one to show fresh data to.
fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// Polls `data.json` until the page goes away. Errors keep the last data and raise the banner;
/// the next good answer lowers it.
/// Fetches the status document of the current pool once and shows it.
async fn refresh(
    data: RwSignal<Option<StatusData>>,
    error: RwSignal<Option<api::Error>>,
    updated: RwSignal<Option<OffsetDateTime>>,
    pool: RwSignal<String>,
) {
    let name = pool.get_untracked();
    let result = api::status_data(Some(name.as_str()).filter(|n| !n.is_empty())).await;
    if pool.try_get_untracked().as_ref() != Some(&name) {
        // The pool changed (or the page went away) while this was in flight.
        return;
    }
    match result {
        Ok(fresh) => {
            // `set` only when changed: unchanged data must not re-render anything.
            if data.with_untracked(|d| d.as_ref() != Some(&fresh)) {
                data.set(Some(fresh));
            }
            error.set(None);
            updated.set(Some(now()));
        }
        Err(e) => error.set(Some(e)),
    }
}

fn poll(
    data: RwSignal<Option<StatusData>>,
    error: RwSignal<Option<api::Error>>,
    updated: RwSignal<Option<OffsetDateTime>>,
    pool: RwSignal<String>,
) {
    let alive = Arc::new(AtomicBool::new(true));
    on_cleanup({
        let alive = Arc::clone(&alive);
        move || alive.store(false, Ordering::Relaxed)
    });
    leptos::task::spawn_local(async move {
        loop {
            if !page_hidden() {
                if !alive.load(Ordering::Relaxed) {
                    return;
                }
                refresh(data, error, updated, pool).await;
            }
            gloo_timers::future::sleep(REFRESH).await;
            if !alive.load(Ordering::Relaxed) {
                return;
            }
        }
    });
}
