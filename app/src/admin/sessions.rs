//! Sessions: the running sessions of every pool's default view, with a Release button that ends
//! one by force (its licenses go back at once), e.g. for a job that hangs on to a seat. The
//! table follows the server's live stream, so a grant shows up without a reload.

use leptos::prelude::*;
use models::SessionStatus;

use super::shell::Shell;
use crate::{live, pool_field::PoolField, sessions_table::SessionsTable};

#[component]
pub fn SessionsScreen() -> impl IntoView {
    let pool = RwSignal::new(String::new());
    let live = live::connect(pool.into());
    view! {
        <Shell title="Sessions">
            <section class="panel" id="sessions">
                <div class="panel-head">
                    <h3 id="sessions-title">"Sessions"</h3>
                    <live::LiveMark live />
                    <PoolField pool choose=move |name| pool.set(name) />
                </div>
                <SessionsTable pool=pool.into() releasable=true status=SessionStatus::Running live />
            </section>
        </Shell>
    }
}
