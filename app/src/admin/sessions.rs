//! Sessions: the running sessions of every pool's default view, with a Release button that ends
//! one by force (its licenses go back at once), e.g. for a job that hangs on to a seat.

use leptos::prelude::*;
use models::SessionStatus;

use super::shell::Shell;
use crate::{pool_field::PoolField, sessions_table::SessionsTable};

#[component]
pub fn SessionsScreen() -> impl IntoView {
    let pool = RwSignal::new(String::new());
    view! {
        <Shell title="Sessions">
            <section class="panel" id="sessions">
                <div class="panel-head">
                    <h3 id="sessions-title">"Sessions"</h3>
                    <PoolField pool choose=move |name| pool.set(name) />
                </div>
                <SessionsTable pool=pool.into() releasable=true status=SessionStatus::Running />
            </section>
        </Shell>
    }
}
