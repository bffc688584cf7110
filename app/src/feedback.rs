//! What the app says back to the person at a form or a table: errors, what was done, questions
//! before something that cannot be undone.

use leptos::prelude::*;

/// An error in the server's words, announced to screen readers.
pub fn error_message(message: String) -> impl IntoView {
    view! {
        <p class="form-error" role="alert">
            {message}
        </p>
    }
}

/// What a request achieved, announced politely.
pub fn done_message(message: String) -> impl IntoView {
    view! {
        <p class="form-ok" role="status">
            {message}
        </p>
    }
}

/// Asks before something that cannot be undone.
pub fn confirm(question: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(question).ok())
        .unwrap_or(false)
}
