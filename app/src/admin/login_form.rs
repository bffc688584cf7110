//! The one login form: the administrator's own (`LoginScreen`) and the vendor account's
//! (`VendorScreen`) are the same form with other words.

use leptos::prelude::*;

use super::task::{Task, on_submit};

/// What the form says, and how the browser may treat its fields.
#[derive(Debug, Clone, Copy)]
pub struct LoginWords {
    /// The ids of the fields are `{id}-principal` and `{id}-secret`; the heading the children give
    /// must be `{id}-title`.
    pub id: &'static str,
    pub principal: &'static str,
    pub secret: &'static str,
    pub submit: &'static str,
    /// This server's own login: the browser may fill in a saved one, and the first field has
    /// the focus. Not for the vendor's, whose secret is not this site's to remember.
    pub own: bool,
}

/// A login form: `children` (its heading and notes) above the two fields, then the button and
/// the error of `task`. `submit` runs on submission; it reads the signals.
#[component]
pub fn LoginForm(
    words: LoginWords,
    #[prop(optional)] form_id: Option<&'static str>,
    principal: RwSignal<String>,
    secret: RwSignal<String>,
    task: Task,
    submit: impl Fn() + 'static,
    children: Children,
) -> impl IntoView {
    let LoginWords { id, own, .. } = words;
    let (principal_id, secret_id) = (format!("{id}-principal"), format!("{id}-secret"));
    view! {
        <form
            class="panel form"
            id=form_id
            on:submit=on_submit(submit)
            aria-labelledby=format!("{id}-title")
        >
            {children()}
            <label for=principal_id.clone()>{words.principal}</label>
            <input
                id=principal_id
                name="principal"
                autocomplete=if own { "username" } else { "off" }
                required
                autofocus=own
                prop:value=move || principal.get()
                on:input=move |ev| principal.set(event_target_value(&ev))
            />
            <label for=secret_id.clone()>{words.secret}</label>
            <input
                id=secret_id
                name="secret"
                type="password"
                autocomplete=if own { "current-password" } else { "off" }
                required
                prop:value=move || secret.get()
                on:input=move |ev| secret.set(event_target_value(&ev))
            />
            <button type="submit" class="primary" disabled=move || task.busy.get()>
                {move || if task.busy.get() { "Logging in…" } else { words.submit }}
            </button>
            {task.error_view()}
        </form>
    }
}
