//! Sessions: the running sessions of every pool's default view, with a Release button that ends
//! one by force (its licenses go back at once), e.g. for a job that hangs on to a seat. The
//! table follows the server's live stream, so a grant shows up without a reload.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use models::SessionStatus;

use super::shell::Shell;
use crate::{address, live, pool_field::PoolField, sessions_table::SessionsTable};

const SESSIONS_PATH: &str = "/admin/sessions";

#[component]
pub fn SessionsScreen() -> impl IntoView {
    // The pool is in the address (`?pool=farm`) with the table's filters and sort.
    let query = use_query_map();
    let pool = RwSignal::new(query.with_untracked(|q| q.get("pool").unwrap_or_default()));
    let live = live::connect(pool.into());
    let navigate = use_navigate();
    let choose = move |name: String| {
        pool.set(name.clone());
        let to = query.with_untracked(|q| address::with_pool(SESSIONS_PATH, q, &name));
        address::show(&navigate, &to);
    };
    view! {
        <Shell title="Sessions">
            <section class="panel" id="sessions">
                <div class="panel-head">
                    <h3 id="sessions-title">"Sessions"</h3>
                    <live::LiveMark live />
                    <PoolField pool choose=choose.clone() />
                </div>
                <SessionsTable pool=pool.into() releasable=true status=SessionStatus::Running live />
            </section>
        </Shell>
    }
}
