//! The license server's web UI: a client-side Leptos app, compiled to wasm32 by trunk and embedded
//! into the server binary.
//!
//! It talks to the server only through the same REST endpoints that scripts use (`api`), with the
//! wire types of the `models` crate, so there is no private channel between UI and server: what
//! the page shows, `curl` can show too.

mod address;
pub mod admin;
pub mod api;
pub mod auth;
mod chart;
mod clock;
mod download;
mod feedback;
pub mod format;
mod live;
mod paths;
mod poll;
mod pool_field;
mod session_row;
mod sessions_table;
mod status_page;
mod table;
mod usage_chart;

use leptos::prelude::*;
use leptos_router::{
    components::{Redirect, Route, Router, Routes},
    path,
};

pub use paths::STATUS_PATH;

#[component]
pub fn App() -> impl IntoView {
    auth::Auth::provide();
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/status/index.html") view=status_page::StatusPage />
                <Route path=path!("/status") view=|| view! { <Redirect path=STATUS_PATH /> } />
                <Route path=path!("/admin/login") view=admin::LoginScreen />
                <Route path=path!("/admin/licenses") view=admin::LicensesScreen />
                <Route path=path!("/admin/vendor") view=admin::VendorScreen />
                <Route path=path!("/admin/users") view=admin::UsersScreen />
                <Route path=path!("/admin/sessions") view=admin::SessionsScreen />
                <Route path=path!("/admin/usage") view=admin::UsageScreen />
                <Route
                    path=path!("/admin")
                    view=|| view! { <Redirect path=paths::LICENSES_PATH /> }
                />
                <Route path=path!("/") view=|| view! { <Redirect path=STATUS_PATH /> } />
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <main class="page">
            <h1>"Page not found"</h1>
            <p>
                "There is nothing here. The status page is at " <a href=STATUS_PATH>{STATUS_PATH}</a>
                "."
            </p>
        </main>
    }
}
