//! The Pool field of the status page and the admin Sessions screen: which cartridge pool the view
//! shows (empty: the default pool).

use leptos::prelude::*;

/// `choose` gets the name, trimmed, when the field changes.
#[component]
pub fn PoolField(pool: RwSignal<String>, choose: impl Fn(String) + 'static) -> impl IntoView {
    view! {
        <label class="pool">
            "Pool "
            <input
                type="search"
                name="pool"
                placeholder="default"
                maxlength="64"
                prop:value=move || pool.get()
                on:change=move |ev| choose(event_target_value(&ev).trim().to_owned())
            />
        </label>
    }
}
