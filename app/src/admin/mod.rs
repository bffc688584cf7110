//! The admin screens: everything the licensing admin API does, through forms.
//!
//! Each screen is a client-side route under `/admin/`, wrapped in [`Shell`], which shows the login
//! form instead when no one is logged in (and comes back to the same address afterwards). Every
//! change goes through [`Task`]: the button is disabled while the request runs, and the error is
//! shown next to the form that caused it. Viewers see the same screens without the buttons that
//! would change anything; the server refuses those calls anyway.

mod licenses;
mod login;
mod sessions;
mod users;
mod vendor;

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::{components::Redirect, hooks::use_location};

pub use licenses::LicensesScreen;
pub use login::LoginScreen;
pub use sessions::SessionsScreen;
pub use users::UsersScreen;
pub use vendor::VendorScreen;

use crate::{api, auth::Auth};

/// The login form; `?next=` says where to go afterwards.
pub const LOGIN_PATH: &str = "/admin/login";
pub const LICENSES_PATH: &str = "/admin/licenses";

/// The screens in the navigation bar.
const SCREENS: &[(&str, &str)] = &[
    (LICENSES_PATH, "Licenses"),
    ("/admin/vendor", "Vendor activation"),
    ("/admin/users", "Licensed users"),
    ("/admin/sessions", "Sessions"),
];

/// The frame of every admin screen: navigation, who is logged in, log out.
#[component]
pub fn Shell(title: &'static str, children: ChildrenFn) -> impl IntoView {
    let auth = Auth::get();
    let location = use_location();
    let here = move || location.pathname.get();
    let logging_out = RwSignal::new(false);
    let to_login = move || {
        let next = format!(
            "{}{}",
            location.pathname.get_untracked(),
            location.search.get_untracked()
        );
        view! {
            <Redirect path=format!("{LOGIN_PATH}?next={}", js_sys::encode_uri_component(&next)) />
        }
    };
    view! {
        <Show when=move || auth.login.with(Option::is_some) fallback=to_login>
            <header class="topbar">
                <h1>"License Server"</h1>
                <nav class="admin-nav" aria-label="Admin screens">
                    {SCREENS
                        .iter()
                        .map(|(path, label)| {
                            view! {
                                <a
                                    href=*path
                                    aria-current=move || (here() == *path).then_some("page")
                                >
                                    {*label}
                                </a>
                            }
                        })
                        .collect_view()} <a href=crate::STATUS_PATH>"Status page"</a>
                </nav>
                <div class="who">
                    <span class="principal">
                        {move || auth.login.with(|l| l.as_ref().map(|l| l.principal.clone()))}
                    </span>
                    <span class="role">
                        {move || if auth.can_edit() { "administrator" } else { "viewer" }}
                    </span>
                    <button
                        type="button"
                        disabled=move || logging_out.get()
                        on:click=move |_| {
                            logging_out.set(true);
                            spawn_local(auth.logout());
                        }
                    >
                        "Log out"
                    </button>
                </div>
            </header>
            <main class="page admin">
                <h2 class="screen-title">{title}</h2>
                {children()}
            </main>
        </Show>
    }
}

/// One request started by a form: its button is disabled while it runs, and its error (in the
/// server's words) is shown next to the form.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    pub busy: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
}

impl Task {
    pub fn new() -> Self {
        Self {
            busy: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    /// Runs `work`; `done` gets its answer. A second click while it runs does nothing.
    pub fn run<T: 'static>(
        self,
        work: impl Future<Output = Result<T, api::Error>> + 'static,
        done: impl FnOnce(T) + 'static,
    ) {
        if self.busy.get_untracked() {
            return;
        }
        let auth = Auth::get();
        self.busy.set(true);
        self.error.set(None);
        spawn_local(async move {
            let result = work.await;
            // The screen may be gone (e.g. the session ended and the login form replaced it).
            if self.busy.try_set(false).is_some() {
                return;
            }
            match result {
                Ok(answer) => done(answer),
                Err(e) => {
                    let message = auth.fail(&e);
                    let _ = self.error.try_set(Some(message));
                }
            }
        });
    }

    /// The error paragraph, for under the form.
    pub fn error_view(self) -> impl IntoView {
        move || self.error.get().map(error_message)
    }
}

impl Default for Task {
    fn default() -> Self {
        Self::new()
    }
}

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

/// What a screen loaded: "Loading…" until the answer comes, then the error or `ok`'s view.
pub fn loaded<T, V>(
    resource: LocalResource<Result<T, String>>,
    ok: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + 'static,
    V: IntoView + 'static,
{
    move || match resource.get() {
        None => view! { <p class="placeholder">"Loading…"</p> }.into_any(),
        Some(Err(message)) => error_message(message).into_any(),
        Some(Ok(value)) => ok(value).into_any(),
    }
}

/// A submit handler that keeps the browser from reloading the page.
pub fn on_submit(handler: impl Fn() + 'static) -> impl Fn(SubmitEvent) + 'static {
    move |ev: SubmitEvent| {
        ev.prevent_default();
        handler();
    }
}

/// Asks before something that cannot be undone.
pub fn confirm(question: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(question).ok())
        .unwrap_or(false)
}
