//! The sessions table, paged, sorted and filtered by the server (`/status/sessions.json`), so a
//! server with 100,000 sessions sends the browser one page, not all of them. Used by the status
//! page, and by the admin Sessions screen with a Release button per running session.
//!
//! The page of sessions is fetched again when the server's [`live`](crate::live) stream says the
//! sessions changed, at most once every [`SESSIONS_SPACING`] (the first change after a quiet
//! spell at once); while the stream is down, it is polled.

use std::{
    cell::Cell,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};
use models::{SessionPage, SessionQuery, SessionSort, SessionStatus, SortOrder};

use crate::{
    address, api,
    auth::Auth,
    feedback::{confirm, done_message, error_message},
    format,
    live::Live,
    poll,
    session_row::{COLUMNS, Column, session_row},
    table::actions_header,
};

/// The shortest time between two fetches that the stream causes: a busy server changes its
/// sessions many times a second, and a page of sessions is sorted and filtered on the server.
const SESSIONS_SPACING: Duration = Duration::from_secs(1);

const PAGE_SIZES: &[u32] = &[25, 50, 100, 200];

/// `releasable`: a Release button on running sessions, for administrators who may edit.
#[component]
pub fn SessionsTable(
    /// The cartridge pool; empty = the default pool.
    pool: Signal<String>,
    #[prop(optional)] releasable: bool,
    #[prop(optional)] status: Option<SessionStatus>,
    /// The page's stream: fetch when the sessions change rather than poll.
    #[prop(optional)]
    live: Option<Live>,
) -> impl IntoView {
    // The query lives in the page's address too: read from it first, written back as it changes.
    let params = use_query_map();
    let initial = params.with_untracked(|p| address::query_from(&address::params_of(p), status));
    let query = RwSignal::new(initial.clone());
    let location = use_location();
    let navigate = use_navigate();
    Effect::new(move |first: Option<()>| {
        let address = query.with(|q| {
            let current = params.with_untracked(address::params_of);
            address::address(&location.pathname.get_untracked(), &current, q, status)
        });
        if first.is_some() {
            address::show(&navigate, &address);
        }
    });
    let page = RwSignal::new(None::<SessionPage>);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let release_error = RwSignal::new(None::<String>);
    // Answers that arrive after a newer request was sent are stale: only the latest is shown.
    let generation = Arc::new(AtomicU64::new(0));
    let load = move || {
        let mine = generation.fetch_add(1, Ordering::Relaxed) + 1;
        let generation = Arc::clone(&generation);
        let q = query.get_untracked();
        let pool = pool.get_untracked();
        async move {
            let result = api::session_page(Some(pool.as_str()).filter(|p| !p.is_empty()), &q).await;
            if generation.load(Ordering::Relaxed) != mine {
                return;
            }
            match result {
                Ok(fresh) => {
                    if page.with_untracked(|p| p.as_ref() != Some(&fresh)) {
                        let _ = page.try_set(Some(fresh));
                    }
                    let _ = error.try_set(None);
                }
                Err(e) => {
                    let _ = error.try_set(Some(e.to_string()));
                }
            }
        }
    };
    let fetch = {
        let load = load.clone();
        move || leptos::task::spawn_local(load())
    };
    // A new query or pool: fetch now; and keep the page fresh.
    Effect::new({
        let fetch = fetch.clone();
        move || {
            query.track();
            pool.track();
            fetch();
        }
    });
    let polled = move || live.is_none_or(|live| !live.connected.get_untracked());
    poll::every_refresh(move || {
        let work = polled().then(&load);
        async move {
            if let Some(work) = work {
                work.await;
            }
        }
    });
    if let Some(live) = live {
        let changes = live.changes();
        let spacing = Spacing::default();
        let fetch = fetch.clone();
        Effect::new(move |previous: Option<Option<u64>>| {
            let now = changes.get();
            if previous.is_some_and(|p| p.is_some() && p != now) {
                spacing.run(fetch.clone());
            }
            now
        });
    }

    let set_filter = move |change: &dyn Fn(&mut SessionQuery)| {
        query.update(|q| {
            change(q);
            q.offset = 0;
        });
    };
    let text_filter = move |field: fn(&mut SessionQuery) -> &mut Option<String>| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            set_filter(&|q| *field(q) = Some(value.clone()).filter(|v| !v.trim().is_empty()));
        }
    };
    let can_release = move || releasable && Auth::get().can_edit();
    let release = move |session_id: u64| {
        if !confirm(&format!(
            "Release session {session_id}? The client loses its licenses and will have to ask again."
        )) {
            return;
        }
        let auth = Auth::get();
        let tokens = auth.tokens();
        let refetch = fetch.clone();
        leptos::task::spawn_local(async move {
            match api::release_session(tokens.as_ref(), session_id).await {
                Ok(_) => {
                    let _ = notice.try_set(Some(format!("Session {session_id} was released.")));
                    let _ = release_error.try_set(None);
                }
                Err(e) => {
                    let _ = notice.try_set(None);
                    let _ = release_error.try_set(Some(auth.fail(&e)));
                }
            }
            refetch();
        });
    };

    let columns = move || COLUMNS.len() + usize::from(can_release());
    let rows = move || page.with(|p| p.as_ref().map(|p| p.sessions.clone()).unwrap_or_default());
    view! {
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>
                "Status "
                <select
                    name="status"
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        set_filter(
                            &|q| {
                                q.status = match value.as_str() {
                                    "running" => Some(SessionStatus::Running),
                                    "finished" => Some(SessionStatus::Finished),
                                    "dropped" => Some(SessionStatus::Dropped),
                                    _ => None,
                                };
                            },
                        );
                    }
                >
                    {[("", "all"), ("running", "running"), ("finished", "finished"), ("dropped", "dropped")]
                        .into_iter()
                        .map(|(value, label)| {
                            let selected = initial.status.map_or("", SessionStatus::as_str) == value;
                            view! {
                                <option value=value selected=selected>
                                    {label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Host "
                <input
                    type="search"
                    name="host"
                    value=initial.host.clone()
                    on:input=text_filter(|q| &mut q.host)
                />
            </label>
            <label>
                "Product "
                <input
                    type="search"
                    name="product"
                    value=initial.product.clone()
                    on:input=text_filter(|q| &mut q.product)
                />
            </label>
            <label>
                "Search "
                <input
                    type="search"
                    name="q"
                    placeholder="id, host, message, user, product…"
                    value=initial.q.clone()
                    on:input=text_filter(|q| &mut q.q)
                />
            </label>
        </form>
        // Not an alert: the status page raises its own banner when the server is unreachable.
        {move || {
            error
                .get()
                .map(|e| {
                    view! { <p class="form-error">{e}</p> }
                })
        }}
        {move || release_error.get().map(error_message)}
        {move || notice.get().map(done_message)}
        <div class="table-wrap" tabindex="0">
            <table aria-labelledby="sessions-title">
                <thead>
                    <tr>
                        {COLUMNS
                            .iter()
                            .map(|c| header(c, query))
                            .collect_view()}
                        {move || {
                            can_release()
                                .then(|| {
                                    view! {
                                        {actions_header()}
                                    }
                                })
                        }}
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=rows
                        key=|s| s.clone()
                        children=move |s| session_row(s, can_release(), release.clone())
                    />
                    {move || {
                        let text = page
                            .with(|p| match p {
                                None => Some("Loading…"),
                                Some(p) if p.sessions.is_empty() && p.total == 0 => {
                                    Some("No sessions.")
                                }
                                Some(p) if p.sessions.is_empty() => {
                                    Some("No session matches these filters.")
                                }
                                Some(_) => None,
                            })?;
                        Some(
                            view! {
                                <tr class="placeholder">
                                    <td colspan=columns()>{text}</td>
                                </tr>
                            },
                        )
                    }}
                </tbody>
            </table>
        </div>
        <Pager page query />
    }
}

fn header(column: &'static Column, query: RwSignal<SessionQuery>) -> impl IntoView {
    let Some(sort) = column.sort else {
        return view! {
            <th scope="col" class:num=column.numeric>
                {column.label}
            </th>
        }
        .into_any();
    };
    let aria_sort = move || {
        query.with(|q| match (q.sort == sort, q.order) {
            (false, _) => "none",
            (true, SortOrder::Asc) => "ascending",
            (true, SortOrder::Desc) => "descending",
        })
    };
    let click = move |_| {
        query.update(|q| {
            if q.sort == sort {
                q.order = q.order.flipped();
            } else {
                q.sort = sort;
                // Ids and times newest first; names from A.
                q.order = match sort {
                    SessionSort::SessionId | SessionSort::Started => SortOrder::Desc,
                    _ => SortOrder::Asc,
                };
            }
            q.offset = 0;
        });
    };
    view! {
        <th scope="col" class:num=column.numeric aria-sort=aria_sort>
            <button type="button" class="sort" on:click=click>
                {column.label}
            </button>
        </th>
    }
    .into_any()
}

#[component]
fn Pager(page: RwSignal<Option<SessionPage>>, query: RwSignal<SessionQuery>) -> impl IntoView {
    let range = move || page.with(|p| p.as_ref().map(range_text));
    let limit = move || u64::from(query.with(|q| q.limit));
    let has_previous = move || query.with(|q| q.offset > 0);
    let has_next = move || {
        page.with(|p| {
            p.as_ref()
                .is_some_and(|p| p.offset + (p.sessions.len() as u64) < p.matched)
        })
    };
    let go = move |to: u64| query.update(|q| q.offset = to);
    view! {
        <nav class="pager" aria-label="Sessions pages">
            <button
                type="button"
                disabled=move || !has_previous()
                on:click=move |_| go(0)
                aria-label="First page"
            >
                "«"
            </button>
            <button
                type="button"
                disabled=move || !has_previous()
                on:click=move |_| go(query.with_untracked(|q| q.offset).saturating_sub(limit()))
            >
                "Previous"
            </button>
            <span class="range" aria-live="polite">
                {range}
            </span>
            <button
                type="button"
                disabled=move || !has_next()
                on:click=move |_| go(query.with_untracked(|q| q.offset) + limit())
            >
                "Next"
            </button>
            <label>
                "Per page "
                <select
                    name="limit"
                    on:change=move |ev| {
                        let limit = event_target_value(&ev).parse().unwrap_or(50);
                        query
                            .update(|q| {
                                q.limit = limit;
                                q.offset = 0;
                            });
                    }
                >
                    {PAGE_SIZES
                        .iter()
                        .map(|n| {
                            view! {
                                <option value=n.to_string() selected=*n == query.with_untracked(|q| q.limit)>
                                    {n.to_string()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
        </nav>
    }
}

/// Runs an action at once when the last run is [`SESSIONS_SPACING`] ago, or else once when that
/// time has passed, however many times it was asked meanwhile.
#[derive(Debug, Clone, Default)]
struct Spacing {
    /// When the action last ran (`Date.now()`, ms).
    last: Rc<Cell<f64>>,
    scheduled: Rc<Cell<bool>>,
}

impl Spacing {
    fn run(&self, action: impl Fn() + 'static) {
        if self.scheduled.get() {
            return;
        }
        let wait = self.last.get() + SESSIONS_SPACING.as_secs_f64() * 1000.0 - js_sys::Date::now();
        if wait <= 0.0 {
            self.last.set(js_sys::Date::now());
            action();
            return;
        }
        self.scheduled.set(true);
        let this = self.clone();
        leptos::task::spawn_local(async move {
            gloo_timers::future::sleep(Duration::from_secs_f64(wait / 1000.0)).await;
            this.scheduled.set(false);
            this.last.set(js_sys::Date::now());
            action();
        });
    }
}

/// Which sessions a page shows, of how many: "1–25 of 1,234 sessions".
fn range_text(page: &SessionPage) -> String {
    let total = format::group_digits(page.total as i64);
    let matched = page.matched;
    if matched == 0 {
        return if page.total == 0 {
            "No sessions".to_owned()
        } else {
            format!(
                "None matching of {total} {}",
                format::plural(page.total, "session", "sessions")
            )
        };
    }
    let from = (page.offset + 1).min(matched);
    let to = (page.offset + page.sessions.len() as u64).min(matched);
    let sessions = format::plural(page.total, "session", "sessions");
    let of = if matched == page.total {
        format!("{total} {sessions}")
    } else {
        format!(
            "{} matching of {total} {sessions}",
            format::group_digits(matched as i64)
        )
    };
    format!(
        "{}–{} of {of}",
        format::group_digits(from as i64),
        format::group_digits(to as i64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(total: u64, matched: u64, offset: u64, shown: usize) -> SessionPage {
        let session = models::Session {
            server_id: String::new(),
            session_id: 1,
            status: SessionStatus::Running,
            host: String::new(),
            ip_address: std::net::IpAddr::from([127, 0, 0, 1]),
            started: time::OffsetDateTime::UNIX_EPOCH,
            message: String::new(),
            licenses: Vec::new(),
            granted: Vec::new(),
            user: None,
            ended: None,
        };
        SessionPage {
            total,
            matched,
            offset,
            sessions: vec![session; shown],
        }
    }

    #[test]
    fn the_range_says_what_is_shown_and_never_0_to_0() {
        assert_eq!(range_text(&page(0, 0, 0, 0)), "No sessions");
        assert_eq!(range_text(&page(5, 0, 0, 0)), "None matching of 5 sessions");
        assert_eq!(range_text(&page(60, 60, 50, 10)), "51–60 of 60 sessions");
        assert_eq!(range_text(&page(1, 1, 0, 1)), "1–1 of 1 session");
        assert_eq!(
            range_text(&page(60, 3, 0, 3)),
            "1–3 of 3 matching of 60 sessions"
        );
    }
}
