//! The frame of every admin screen: navigation, who is logged in, log out; the login form instead
//! when no one is.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{components::Redirect, hooks::use_location};

use crate::{
    auth::Auth,
    clock::ZoneNote,
    paths::{LICENSES_PATH, LOGIN_PATH, STATUS_PATH},
};

/// The screens in the navigation bar.
const SCREENS: &[(&str, &str)] = &[
    (LICENSES_PATH, "Licenses"),
    ("/admin/vendor", "Vendor activation"),
    ("/admin/users", "Licensed users"),
    ("/admin/sessions", "Sessions"),
    ("/admin/usage", "Usage"),
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
                        .collect_view()} <a href=STATUS_PATH rel="external">
                        "Status page"
                    </a>
                </nav>
                <ZoneNote />
                <div class="who">
                    <span class="principal">
                        {move || auth.login.with(|l| l.as_ref().map(|l| l.principal.clone()))}
                    </span>
                    <span class="role">
                        {move || {
                            auth.login
                                .with(|l| {
                                    l.as_ref()
                                        .map(|l| match (l.role.is_empty(), l.can_edit) {
                                            (false, _) => l.role.clone(),
                                            (true, true) => "administrator".to_owned(),
                                            (true, false) => "viewer".to_owned(),
                                        })
                                })
                        }}
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
