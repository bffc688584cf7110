//! Sessions: the running sessions of every pool's default view, with a Release button that ends
//! one by force (its licenses go back at once), e.g. for a job that hangs on to a seat.

use leptos::prelude::*;
use models::SessionStatus;

use super::Shell;
use crate::sessions_table::SessionsTable;

#[component]
pub fn SessionsScreen() -> impl IntoView {
    let pool = RwSignal::new(String::new());
    view! {
        <Shell title="Sessions">
            <section class="panel" id="sessions">
                <div class="panel-head">
                    <h3 id="sessions-title">"Sessions"</h3>
                    <label class="pool">
                        "Pool "
                        <input
                            type="search"
                            name="pool"
                            placeholder="default"
                            maxlength="64"
                            on:change=move |ev| pool.set(event_target_value(&ev).trim().to_owned())
                        />
                    </label>
                </div>
                <SessionsTable pool=pool.into() releasable=true status=SessionStatus::Running />
            </section>
        </Shell>
    }
}
