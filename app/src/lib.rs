//! The license server's web UI: client-side Leptos apps, compiled to wasm32 by trunk and embedded
//! into the server binary.
//!
//! Two bundles share this library: the public status page ([`StatusApp`], `src/bin/status.rs`)
//! and the admin screens ([`AdminApp`], `src/bin/admin.rs`). The status page is what build
//! farms' dashboards keep open, and it should not carry the admin screens' code; each binary
//! links only what its routes reach.
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

/// The status page's app (bundle `status`). A link to an admin screen leaves it: those are
/// another bundle, loaded by a full page load (`rel="external"` keeps the router out of it).
#[component]
pub fn StatusApp() -> impl IntoView {
    auth::Auth::provide();
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/status/index.html") view=status_page::StatusPage />
            </Routes>
        </Router>
    }
}

/// The admin screens' app (bundle `admin`).
#[component]
pub fn AdminApp() -> impl IntoView {
    auth::Auth::provide();
    view! {
        <Router>
            <Routes fallback=NotFound>
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
                "There is nothing here. The status page is at " <a href=STATUS_PATH rel="external">
                    {STATUS_PATH}
                </a>
                "."
            </p>
        </main>
    }
}
