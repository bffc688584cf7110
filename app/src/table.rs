//! Parts of the app's tables.

use leptos::prelude::*;

/// The header of a column of buttons: nothing to see, a name for screen readers.
pub fn actions_header() -> impl IntoView {
    view! {
        <th scope="col">
            <span class="visually-hidden">"Actions"</span>
        </th>
    }
}
